//! Google's own generated client (`google-sheets4`) and `yup-oauth2`'s
//! service-account authenticator against the emulator, configured exactly
//! as etl-push-sheets configures them: the key file from `keygen` (its
//! `token_uri` is the emulator's) and the hub's base URL; nothing else.

mod common;

use common::{Emu, SA};
use google_sheets4::api::{
    AddSheetRequest, BatchUpdateSpreadsheetRequest, ClearValuesRequest, DeleteSheetRequest,
    Request, SheetProperties, Spreadsheet, SpreadsheetProperties, UpdateSheetPropertiesRequest,
    ValueRange,
};
use google_sheets4::{hyper_rustls, hyper_util, yup_oauth2, FieldMask, Sheets};
use serde_json::json;

type Hub = Sheets<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>>;

async fn hub(emu: &Emu, key: &std::path::Path) -> Hub {
    let key = yup_oauth2::read_service_account_key(key).await.unwrap();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .unwrap()
        .https_or_http()
        .enable_http1()
        .build();
    let executor = hyper_util::rt::TokioExecutor::new();
    let token_client =
        hyper_util::client::legacy::Client::builder(executor.clone()).build(connector.clone());
    let auth = yup_oauth2::ServiceAccountAuthenticator::with_client(
        key,
        yup_oauth2::CustomHyperClientBuilder::from(token_client),
    )
    .build()
    .await
    .unwrap();
    let client = hyper_util::client::legacy::Client::builder(executor).build(connector);
    let mut hub = Sheets::new(client, auth);
    hub.base_url(format!("{}/", emu.url));
    hub.root_url(format!("{}/", emu.url));
    hub
}

fn rows(v: &[&[serde_json::Value]]) -> Vec<Vec<serde_json::Value>> {
    v.iter().map(|r| r.to_vec()).collect()
}

/// Runs `f` on a tokio runtime; the emulator handle lives outside it
/// (its blocking HTTP client must not be dropped inside a runtime).
fn on_tokio<F: std::future::Future<Output = ()>>(f: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

#[test]
fn google_sheets4_with_a_service_account_key() {
    let emu = Emu::start(&["--request-log", "req.ndjson"]);
    on_tokio(drive(&emu));
}

#[allow(clippy::too_many_lines)] // one client session, step by step
async fn drive(emu: &Emu) {
    let key = emu.keygen("key.json", &[]);
    assert_eq!(key["type"], "service_account");
    assert_eq!(key["client_email"], SA);
    assert_eq!(key["token_uri"], format!("{}/token", emu.url));
    assert!(key["private_key"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    let hub = hub(emu, &emu.path("key.json")).await;

    // Create: the caller owns the new spreadsheet.
    let req = Spreadsheet {
        properties: Some(SpreadsheetProperties {
            title: Some("Orders".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let (_, book) = hub.spreadsheets().create(req).doit().await.unwrap();
    let id = book.spreadsheet_id.unwrap();
    let sheet = &book.sheets.unwrap()[0];
    let props = sheet.properties.as_ref().unwrap();
    assert_eq!(props.title.as_deref(), Some("Sheet1"));
    let grid = props.grid_properties.as_ref().unwrap();
    assert_eq!((grid.row_count, grid.column_count), (Some(1000), Some(26)));

    // values.update RAW keeps text as text.
    let vr = ValueRange {
        values: Some(rows(&[
            &[json!("order_id"), json!("amount")],
            &[json!("007"), json!(12.5)],
        ])),
        ..Default::default()
    };
    let (_, up) = hub
        .spreadsheets()
        .values_update(vr, &id, "Sheet1!A1:B2")
        .value_input_option("RAW")
        .doit()
        .await
        .unwrap();
    assert_eq!(up.updated_range.as_deref(), Some("Sheet1!A1:B2"));
    assert_eq!(up.updated_cells, Some(4));

    // values.append INSERT_ROWS after the table.
    let vr = ValueRange {
        values: Some(rows(&[&[json!("008"), json!(3)]])),
        ..Default::default()
    };
    let (_, ap) = hub
        .spreadsheets()
        .values_append(vr, &id, "Sheet1!A1")
        .value_input_option("USER_ENTERED")
        .insert_data_option("INSERT_ROWS")
        .doit()
        .await
        .unwrap();
    assert_eq!(ap.table_range.as_deref(), Some("Sheet1!A1:B2"));
    assert_eq!(
        ap.updates.unwrap().updated_range.as_deref(),
        Some("Sheet1!A3:B3")
    );

    let (_, got) = hub
        .spreadsheets()
        .values_get(&id, "Sheet1!A:B")
        .value_render_option("UNFORMATTED_VALUE")
        .doit()
        .await
        .unwrap();
    assert_eq!(
        got.range.as_deref(),
        Some("Sheet1!A1:B1001"),
        "INSERT_ROWS added a row"
    );
    assert_eq!(
        got.values.unwrap(),
        rows(&[
            &[json!("order_id"), json!("amount")],
            &[json!("007"), json!(12.5)],
            &[json!(8), json!(3)]
        ])
    );

    // The atomic replace of etl-push-sheets: a hidden sheet, then one
    // batchUpdate that unhides it, deletes the old sheet and renames it.
    let add = BatchUpdateSpreadsheetRequest {
        requests: Some(vec![Request {
            add_sheet: Some(AddSheetRequest {
                properties: Some(SheetProperties {
                    title: Some("Sheet1 (new)".into()),
                    hidden: Some(true),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let (_, r) = hub
        .spreadsheets()
        .batch_update(add, &id)
        .doit()
        .await
        .unwrap();
    let new_id = r.replies.unwrap()[0]
        .add_sheet
        .as_ref()
        .unwrap()
        .properties
        .as_ref()
        .unwrap()
        .sheet_id
        .unwrap();
    let vr = ValueRange {
        values: Some(rows(&[&[json!("order_id")], &[json!("new")]])),
        ..Default::default()
    };
    hub.spreadsheets()
        .values_update(vr, &id, "'Sheet1 (new)'!A1:A1")
        .value_input_option("RAW")
        .doit()
        .await
        .expect_err("A1:A1 bounds the write to one cell: two rows must not fit");
    let vr = ValueRange {
        values: Some(rows(&[&[json!("order_id")], &[json!("new")]])),
        ..Default::default()
    };
    let (_, anchored) = hub
        .spreadsheets()
        .values_update(vr, &id, "'Sheet1 (new)'!A1")
        .value_input_option("RAW")
        .doit()
        .await
        .expect("a single cell anchors the block, as at Google");
    assert_eq!(
        anchored.updated_range.as_deref(),
        Some("'Sheet1 (new)'!A1:A2")
    );
    let vr = ValueRange {
        values: Some(rows(&[&[json!("order_id")], &[json!("new")]])),
        ..Default::default()
    };
    hub.spreadsheets()
        .values_update(vr, &id, "'Sheet1 (new)'!A1:A2")
        .value_input_option("RAW")
        .doit()
        .await
        .unwrap();
    let swap = BatchUpdateSpreadsheetRequest {
        requests: Some(vec![
            Request {
                update_sheet_properties: Some(UpdateSheetPropertiesRequest {
                    properties: Some(SheetProperties {
                        sheet_id: Some(new_id),
                        hidden: Some(false),
                        ..Default::default()
                    }),
                    fields: Some(FieldMask::new(&["hidden"])),
                }),
                ..Default::default()
            },
            Request {
                delete_sheet: Some(DeleteSheetRequest { sheet_id: Some(0) }),
                ..Default::default()
            },
            Request {
                update_sheet_properties: Some(UpdateSheetPropertiesRequest {
                    properties: Some(SheetProperties {
                        sheet_id: Some(new_id),
                        title: Some("Sheet1".into()),
                        ..Default::default()
                    }),
                    fields: Some(FieldMask::new(&["title"])),
                }),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    hub.spreadsheets()
        .batch_update(swap, &id)
        .doit()
        .await
        .unwrap();
    let (_, book) = hub.spreadsheets().get(&id).doit().await.unwrap();
    let sheets = book.sheets.unwrap();
    assert_eq!(sheets.len(), 1);
    let p = sheets[0].properties.as_ref().unwrap();
    assert_eq!(
        (p.sheet_id, p.title.as_deref(), p.hidden),
        (Some(new_id), Some("Sheet1"), None)
    );

    // Clear, then an error as google-sheets4 surfaces it.
    hub.spreadsheets()
        .values_clear(ClearValuesRequest::default(), &id, "Sheet1!A2")
        .doit()
        .await
        .unwrap();
    let (_, got) = hub
        .spreadsheets()
        .values_get(&id, "Sheet1")
        .doit()
        .await
        .unwrap();
    assert_eq!(got.values.unwrap(), rows(&[&[json!("order_id")]]));
    match hub.spreadsheets().get("no-such-sheet").doit().await {
        Err(google_sheets4::Error::BadRequest(v)) => {
            assert_eq!(v["error"]["status"], "NOT_FOUND");
        }
        other => panic!("expected NOT_FOUND, got {other:?}"),
    }

    // yup-oauth2 caches tokens: one exchange per scope set google-sheets4
    // asked for (drive for writes, drive.readonly for reads), and no call
    // was refused for its token.
    let log = emu.log_lines("req.ndjson");
    let tokens = log.iter().filter(|l| l["path"] == "/token").count();
    assert!((1..=2).contains(&tokens), "{log:?}");
    assert!(log.iter().all(|l| l["status"] != 401), "{log:?}");
    let writes: Vec<_> = log.iter().filter(|l| l["kind"] == "write").collect();
    assert!(
        !writes.is_empty() && writes.iter().all(|l| l["account"] == SA),
        "{log:?}"
    );
}

#[test]
fn a_key_the_emulator_does_not_know_gets_no_token() {
    let emu = Emu::start(&[]);
    emu.keygen("key.json", &[]);
    // Same file, but the emulator restarted without it: the signature has
    // no registered key to verify against.
    let other = Emu::start(&[]);
    on_tokio(unknown_key(&emu, &other));
}

async fn unknown_key(emu: &Emu, other: &Emu) {
    let mut key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(emu.path("key.json")).unwrap()).unwrap();
    key["token_uri"] = json!(format!("{}/token", other.url));
    let path = other.path("key.json");
    std::fs::write(&path, key.to_string()).unwrap();
    let hub = hub(other, &path).await;
    let err = hub.spreadsheets().get("x").doit().await.unwrap_err();
    assert!(format!("{err:?}").contains("account not found"), "{err:?}");
}
