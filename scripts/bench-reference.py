#!/usr/bin/env python3
"""The daily job written the way the articles about it do: what etlkit's users
would write instead. scripts/bench pipeline runs it beside the etlkit job on
the same mailbox and checks that both leave the same table and the same sheet.

Plain and idiomatic, no tuning tricks: imaplib and email for the mailbox,
pandas for the CSV attachments and the cleaning, DuckDB's Python API for the
upsert, Google's API client (google-api-python-client with google-auth's
service-account credentials) for the sheet. The cleaning is the one of
examples/daily-client-sync/transform.toml for these English exports: trim,
N/A is null, required columns, currency upper-cased with EUR as default,
amount to DECIMAL(12,2), updated_at from Paris wall-clock time to UTC, the
amount band, the salted SHA-256 pseudonym of the customer, the run id.

Settings from the environment, as the etlkit job takes them:
  BENCH_IMAP_HOST, BENCH_IMAP_PORT, BENCH_IMAP_USER, BENCH_IMAP_PASSWORD,
  BENCH_IMAP_CA (the server's CA), ETL_CLIENT_FROM, ETL_DB, ETL_MASK_SALT,
  ETL_RUN_ID, ETL_SPREADSHEET_ID, ETL_SHEET, ETL_SHEETS_API_URL,
  GOOGLE_APPLICATION_CREDENTIALS.
"""
import email
import hashlib
import imaplib
import io
import os
import re
import ssl
import sys
import time

import duckdb
import pandas as pd
from google.oauth2 import service_account
from googleapiclient.discovery import build

env = os.environ
# Each phase's wall time, printed to stderr at the end for scripts/bench
# (measuring only: the job itself is the plain one the articles write).
marks = [("start", time.monotonic())]


def snake(name):
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


# 1. The new report e-mails and their CSV attachments.
ctx = ssl.create_default_context(cafile=env["BENCH_IMAP_CA"])
imap = imaplib.IMAP4_SSL(env["BENCH_IMAP_HOST"], int(env["BENCH_IMAP_PORT"]), ssl_context=ctx)
imap.login(env["BENCH_IMAP_USER"], env["BENCH_IMAP_PASSWORD"])
imap.select("INBOX", readonly=True)
_, found = imap.search(None, "FROM", f'"{env.get("ETL_CLIENT_FROM", "reports@client.example")}"')
frames = []
for num in found[0].split():
    _, data = imap.fetch(num, "(RFC822)")
    msg = email.message_from_bytes(data[0][1])
    for part in msg.walk():
        name = part.get_filename()
        if name and name.lower().endswith(".csv"):
            df = pd.read_csv(io.BytesIO(part.get_payload(decode=True)), sep=";", dtype=str, keep_default_na=False)
            frames.append(df.rename(columns=snake))
imap.logout()
df = pd.concat(frames, ignore_index=True)
marks.append(("fetch and parse", time.monotonic()))

# 2. Clean the rows (transform.toml).
for col in df.columns:
    df[col] = df[col].str.strip()
df = df.replace({"N/A": None, "": None})
df = df.dropna(subset=["order_id", "amount", "updated_at"])
df["currency"] = df["currency"].str.upper().fillna("EUR")
df["amount"] = pd.to_numeric(df["amount"]).round(2)
local = pd.to_datetime(df["updated_at"], format="%Y-%m-%d %H:%M:%S")
df["updated_at"] = local.dt.tz_localize("Europe/Paris").dt.tz_convert("UTC").dt.tz_localize(None)
df["amount_band"] = df["amount"].map(lambda a: "large" if a >= 1000 else "small")
salt = env["ETL_MASK_SALT"].encode()
df["customer"] = df["customer"].map(lambda c: hashlib.sha256(salt + b"\0" + c.encode()).hexdigest())
df["_run_id"] = env["ETL_RUN_ID"]
df = df.drop_duplicates(subset=["order_id"], keep="last")
marks.append(("clean", time.monotonic()))

# 3. Upsert into DuckDB.
con = duckdb.connect(env["ETL_DB"])
con.execute(
    """CREATE TABLE IF NOT EXISTS orders (
        order_id VARCHAR PRIMARY KEY, customer VARCHAR, amount DECIMAL(12,2), currency VARCHAR,
        updated_at TIMESTAMP, amount_band VARCHAR, _run_id VARCHAR)"""
)
con.register("incoming", df[["order_id", "customer", "amount", "currency", "updated_at", "amount_band", "_run_id"]])
con.execute("INSERT OR REPLACE INTO orders SELECT * FROM incoming")
table = con.execute("SELECT * FROM orders ORDER BY order_id").fetchdf()
con.close()
marks.append(("upsert", time.monotonic()))

# 4. Publish the table to the sheet.
creds = service_account.Credentials.from_service_account_file(
    env["GOOGLE_APPLICATION_CREDENTIALS"], scopes=["https://www.googleapis.com/auth/spreadsheets"]
)
sheets = build("sheets", "v4", credentials=creds, client_options={"api_endpoint": env["ETL_SHEETS_API_URL"]})
book, title = env["ETL_SPREADSHEET_ID"], env.get("ETL_SHEET", "Orders")
meta = sheets.spreadsheets().get(spreadsheetId=book).execute()
ids = {s["properties"]["title"]: s["properties"]["sheetId"] for s in meta.get("sheets", [])}
if title not in ids:
    reply = sheets.spreadsheets().batchUpdate(
        spreadsheetId=book, body={"requests": [{"addSheet": {"properties": {"title": title}}}]}
    ).execute()
    ids[title] = reply["replies"][0]["addSheet"]["properties"]["sheetId"]
table["amount"] = table["amount"].astype(float)
table["updated_at"] = table["updated_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
values = [list(table.columns)] + table.astype(object).where(table.notna(), "").values.tolist()
grid = {"sheetId": ids[title], "gridProperties": {"rowCount": len(values), "columnCount": len(values[0])}}
sheets.spreadsheets().batchUpdate(
    spreadsheetId=book,
    body={"requests": [{"updateSheetProperties": {"properties": grid, "fields": "gridProperties(rowCount,columnCount)"}}]},
).execute()
sheets.spreadsheets().values().clear(spreadsheetId=book, range=title).execute()
# In blocks of rows: one request must stay under the API's 2 MB payload.
BLOCK = 10000
for start in range(0, len(values), BLOCK):
    sheets.spreadsheets().values().update(
        spreadsheetId=book, range=f"{title}!A{start + 1}", valueInputOption="RAW",
        body={"values": values[start:start + BLOCK]},
    ).execute()
marks.append(("publish", time.monotonic()))
print(f"{len(table)} rows in {env['ETL_DB']} and {book}/{title}")
print("phases:", ", ".join(f"{name} {t - marks[i][1]:.2f} s" for i, (name, t) in enumerate(marks[1:])), file=sys.stderr)
