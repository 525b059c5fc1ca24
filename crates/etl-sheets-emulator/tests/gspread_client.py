"""gspread (a widely used third-party Sheets client, from PyPI) and Google's
own auth library against the emulator, unmodified: the only change is
where the requests go (a transport adapter sends https://sheets.googleapis.com
to the emulator; the key file's token_uri is the emulator's, as keygen
writes it). Every step checks what it reads back; any difference exits 1.

    python3 gspread_client.py EMULATOR_URL KEY_FILE SPREADSHEET_ID
"""
import sys

import gspread
import requests
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

url, key, sheet_id = sys.argv[1], sys.argv[2], sys.argv[3]
GOOGLE = "https://sheets.googleapis.com"


class ToEmulator(requests.adapters.HTTPAdapter):
    """Sends Google's Sheets host to the emulator; nothing else changes."""

    def send(self, request, **kwargs):
        request.url = url + request.url[len(GOOGLE):]
        return super().send(request, **kwargs)


def same(what, got, want):
    if got != want:
        print(f"{what}: got {got!r}, want {want!r}", file=sys.stderr)
        sys.exit(1)
    print(f"ok {what}")


creds = service_account.Credentials.from_service_account_file(
    key, scopes=["https://www.googleapis.com/auth/spreadsheets"])
session = AuthorizedSession(creds)
session.mount(GOOGLE, ToEmulator())
gc = gspread.Client(auth=creds, session=session)

sh = gc.open_by_key(sheet_id)
ws = sh.sheet1
same("title", sh.title, "Client book")

# A block written from a single-cell anchor.
ws.update([["name", "qty", "price"], ["apple", 3, 1.5], ["pear", 10, 0.25]], "A1")
same("get_all_values", ws.get_all_values(),
     [["name", "qty", "price"], ["apple", "3", "1.5"], ["pear", "10", "0.25"]])
same("get_all_records", ws.get_all_records(),
     [{"name": "apple", "qty": 3, "price": 1.5}, {"name": "pear", "qty": 10, "price": 0.25}])

ws.append_row(["plum", 7, 2])
ws.append_rows([["fig", 1, 4], ["kiwi", 2, 0.5]])
same("append", ws.col_values(1), ["name", "apple", "pear", "plum", "fig", "kiwi"])

ws.update_acell("B2", 4)
ws.update_cell(3, 2, "=B2*2")
same("acell", ws.acell("B2").value, "4")
same("formula", ws.cell(3, 2).value, "8")
same("formula text", ws.acell("B3", value_render_option="FORMULA").value, "=B2*2")
same("find", ws.find("plum").row, 4)

ws.batch_update([{"range": "D1:D2", "values": [["note"], ["fresh"]]}])
same("batch_update", ws.get("D1:D2"), [["note"], ["fresh"]])
ws.batch_clear(["D1:D2"])
same("batch_clear", ws.get("D1:D2"), [[]])  # gspread's reading of a ValueRange without values

# Formats through repeatCell, read back as the values show them.
ws.format("C2:C6", {"numberFormat": {"type": "NUMBER", "pattern": "#,##0.00"}})
ws.format("A1:C1", {"textFormat": {"bold": True}})
same("number format", ws.col_values(3), ["price", "1.50", "0.25", "2.00", "4.00", "0.50"])

# Grid: resize and freeze through updateSheetProperties.
ws.resize(rows=50, cols=6)
ws.freeze(rows=1)
props = next(s for s in sh.fetch_sheet_metadata()["sheets"] if s["properties"]["sheetId"] == ws.id)
grid = props["properties"]["gridProperties"]
same("grid", (grid["rowCount"], grid["columnCount"], grid.get("frozenRowCount")), (50, 6, 1))

# Worksheets: add, rename, list, delete.
two = sh.add_worksheet(title="Two", rows=10, cols=3)
two.update([["x"]], "A1")
two.update_title("Second")
same("worksheets", [w.title for w in sh.worksheets()], ["Sheet1", "Second"])
sh.del_worksheet(two)
same("after delete", [w.title for w in sh.worksheets()], ["Sheet1"])
print("gspread: all everyday operations served")
