//! The real app, end to end: a moderator, a participant and a guest each record their own
//! breakout room by clicking (or typing) through the 3 Dots flow, against a real classroom
//! server, with the real X display and sound server; then the server's API shows where each
//! recording landed and who may see it, and every downloaded file decodes and shows the stage.
//!
//! Along the way: every text of the flow is checked exactly, the role differences of the menu
//! and the indicator, both stop paths, the permission rule (no Record item, the core refusing a
//! forced start, a participant's recording stopped when a moderator withdraws the permission),
//! keyboard-only use, and that menus and dialogs never cover the stage. Screenshots of every
//! step: `target/tmp/app-e2e/recording_flow/`.

#![allow(clippy::unwrap_used)] // a failed step should stop the test right there

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// What each person paints on the whiteboard, to find it again in the recorded pictures.
const MODERATOR_RGB: [u8; 3] = [200, 40, 40];
const PARTICIPANT_RGB: [u8; 3] = [40, 170, 60];
const GUEST_RGB: [u8; 3] = [50, 70, 210];

/// WebDriver key codes.
const ENTER: &str = "\u{E007}";

async fn press(app: &App, key: &str) {
    app.client
        .active_element()
        .await
        .unwrap()
        .send_keys(key)
        .await
        .unwrap();
}

async fn focused_id(app: &App) -> String {
    app.js("return document.activeElement ? document.activeElement.id : ''")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// No part of `id` lies over the stage.
async fn clear_of_stage(app: &App, id: &str) {
    let (sx, sy, sw, sh) = app.rect("stage").await;
    let (x, y, w, h) = app.rect(id).await;
    let overlap = x < sx + sw && sx < x + w && y < sy + sh && sy < y + h;
    assert!(
        !overlap,
        "#{id} ({x},{y} {w}x{h}) covers the stage ({sx},{sy} {sw}x{sh})"
    );
}

/// Checks the recording indicator for `role` and that it sits at the window's bottom left.
async fn check_indicator(app: &App, moderator: bool) {
    app.wait_visible("indicator").await;
    let (w, h) = app.window_size().await;
    let (x, y, iw, ih) = app.rect("indicator").await;
    assert!(
        x < w * 0.25 && y + ih > h * 0.85,
        "indicator at {x},{y} ({iw}x{ih}) is not at the bottom left of {w}x{h}"
    );
    let dot = app
        .js("const d = document.querySelector('.indicator__dot'); const r = d.getBoundingClientRect();
             return [getComputedStyle(d).backgroundColor, r.width, r.height, getComputedStyle(d).borderRadius]")
        .await;
    let dot = dot.as_array().unwrap();
    let colour = dot[0].as_str().unwrap();
    assert!(
        colour.starts_with("rgb(2") && dot[1].as_f64().unwrap() > 4.0,
        "a red circle: {dot:?}"
    );
    assert!(app.text("indicator").await.contains("REC"));
    assert_eq!(app.visible("indicator-time").await, moderator, "timer");
    assert_eq!(
        app.visible("indicator-stop").await,
        moderator,
        "stop square"
    );
    if moderator {
        let t = app.text("indicator-time").await;
        assert!(
            t.len() == 8 && t.as_bytes()[2] == b':' && t.as_bytes()[5] == b':',
            "HH:MM:SS, got {t:?}"
        );
        let label = app.by_id("indicator-stop").await.attr("aria-label").await;
        assert_eq!(label.unwrap().as_deref(), Some(STOP));
    }
    clear_of_stage(app, "indicator").await;
}

/// 3 Dots → Record → Start recording → (momentarily) → "being recorded" → Confirm.
async fn start_by_clicking(app: &mut App, world: &World, who: &str) {
    app.click("more-options").await;
    app.wait_visible("menu").await;
    clear_of_stage(app, "menu").await;
    app.click("menu-record").await;
    app.wait_dialog(ASK_START).await;
    assert_eq!(
        app.dialog().await,
        Some((
            ASK_START.to_owned(),
            START_BUTTON.to_owned(),
            Some("Cancel".to_owned())
        ))
    );
    clear_of_stage(app, "dialog").await;
    app.shot(world, &format!("{who}-ask-start")).await;
    app.click("dialog-primary").await;
    app.wait_dialog(RECORDED).await;
    assert_eq!(
        app.dialog().await,
        Some((RECORDED.to_owned(), CONFIRM.to_owned(), None))
    );
    assert!(
        app.seen().await.iter().any(|t| t == STARTING),
        "{STARTING:?} was shown before the first frame"
    );
    app.shot(world, &format!("{who}-being-recorded")).await;
    app.click("dialog-primary").await;
}

/// Waits for the "saved" notice after a stop and returns its text.
async fn wait_saved(app: &App) -> String {
    app.wait_for(
        "the saved notice",
        "const n = document.getElementById('notice-saved'); return !!n && n.textContent.includes('Saved to');",
    )
    .await;
    app.wait_for(
        "the indicator to go",
        "return document.getElementById('indicator').hidden",
    )
    .await;
    app.text("notice-saved").await
}

fn entry_titles(list: &Value) -> Vec<String> {
    list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["recorder"]["display_name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderator_participant_and_guest_record_their_breakout_rooms() {
    let world = World::start("recording_flow", 1440, 900).await;
    let base = world.base_url();
    let demo = world.demo.clone();
    let (room_a, room_b, room_c) = (
        world.breakout(0).clone(),
        world.breakout(1).clone(),
        world.breakout(2).clone(),
    );

    // ---- the moderator records Group A and stops with the square ----------------------
    let mut app = world.app("moderator").await;
    app.shot(&world, "start").await;
    app.sign_in(&base, &demo.moderator_username, &demo.moderator_password)
        .await;
    app.shot(&world, "moderator-rooms").await;
    app.enter(&room_a.name).await;
    assert!(app.text("room-name").await.contains(&room_a.name));
    assert_eq!(app.text("room-role").await, "Moderator");
    app.paint_stage(MODERATOR_RGB).await;
    app.click("more-options").await;
    app.wait_visible("menu").await;
    // Every control on screen has an accessible name (its text or an aria-label).
    let unnamed = app
        .js("return [...document.querySelectorAll('button, input, [role=menuitem], [role=menuitemcheckbox]')]
                .filter((e) => e.getClientRects().length > 0 && !e.closest('[hidden]'))
                .filter((e) => !((e.getAttribute('aria-label') || e.textContent || (e.labels && e.labels[0] && e.labels[0].textContent) || '').trim()))
                .map((e) => e.outerHTML.slice(0, 80))")
        .await;
    assert_eq!(unnamed, serde_json::json!([]), "controls without a name");
    assert_eq!(
        app.menu_items().await,
        [RECORD, "Participants may record"],
        "a moderator's menu"
    );
    app.shot(&world, "moderator-menu").await;
    // Cancel changes nothing.
    app.click("menu-record").await;
    app.wait_dialog(ASK_START).await;
    app.click("dialog-secondary").await;
    assert!(app.dialog().await.is_none());
    assert!(!app.visible("indicator").await, "Cancel starts nothing");
    start_by_clicking(&mut app, &world, "moderator").await;
    check_indicator(&app, true).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        app.text("indicator-time").await.as_str() >= "00:00:04",
        "the timer runs"
    );
    app.shot(&world, "moderator-indicator").await;
    app.click("more-options").await;
    assert_eq!(app.menu_items().await, [STOP, "Participants may record"]);
    app.click("more-options").await;
    app.click("indicator-stop").await;
    let saved = wait_saved(&app).await;
    assert!(
        saved.contains(&app.recordings_dir.display().to_string()),
        "{saved}"
    );
    app.shot(&world, "moderator-saved").await;
    app.wait_uploaded(1).await;
    app.shot(&world, "moderator-uploaded").await;
    app.quit().await;

    // ---- a participant (permission on) records Group B, stops through the menu --------
    let mut app = world.app("participant").await;
    app.sign_in(
        &base,
        &demo.participant_username,
        &demo.participant_password,
    )
    .await;
    app.enter(&room_b.name).await;
    assert_eq!(app.text("room-role").await, "Participant");
    app.paint_stage(PARTICIPANT_RGB).await;
    app.click("more-options").await;
    app.wait_visible("menu").await;
    assert_eq!(app.menu_items().await, [RECORD], "a participant's menu");
    app.click("more-options").await;
    start_by_clicking(&mut app, &world, "participant").await;
    check_indicator(&app, false).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    app.shot(&world, "participant-indicator").await;
    app.click("more-options").await;
    app.wait_visible("menu").await;
    assert_eq!(app.menu_items().await, [STOP]);
    app.click("menu-stop").await;
    wait_saved(&app).await;
    app.wait_uploaded(1).await;

    // A moderator withdraws the permission while the participant records: the recording
    // stops, is saved, and the participant is told why; Record is gone from the menu.
    start_by_clicking(&mut app, &world, "participant-again").await;
    check_indicator(&app, false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let moderator_api =
        Api::sign_in(&base, &demo.moderator_username, &demo.moderator_password).await;
    let r = reqwest::Client::new()
        .put(format!(
            "{base}/api/live-rooms/{}/permission",
            demo.live_room.id
        ))
        .bearer_auth(&moderator_api.token)
        .json(&serde_json::json!({ "participants_may_record": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let saved = wait_saved(&app).await;
    assert!(
        saved.contains("A moderator turned off recording for participants"),
        "{saved}"
    );
    app.shot(&world, "participant-permission-withdrawn").await;
    app.click("more-options").await;
    assert!(
        !app.menu_items().await.iter().any(|i| i == RECORD),
        "no Record item without the permission"
    );
    // The core refuses too, whatever the page sends.
    let forced = app
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.__TAURI_INTERNALS__.invoke('start_recording', { args: { stage: { x: 0, y: 0, width: 640, height: 360 } } })
                 .then(() => done('started'), (e) => done(e));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(forced["kind"], "not_allowed", "{forced}");
    // The stopped recording stays on this computer: the classroom refuses participants'
    // uploads while recording is off.
    app.wait_for(
        "the withdrawn recording to be listed as local",
        "return document.querySelectorAll('.recording--local_only').length === 1",
    )
    .await;
    app.shot(&world, "participant-no-permission").await;

    // ---- the moderator turns the permission back on from the 3 Dots menu --------------
    let mut moderator = world.app("moderator-2").await;
    moderator
        .sign_in(&base, &demo.moderator_username, &demo.moderator_password)
        .await;
    moderator.enter(&room_a.name).await;
    moderator.click("more-options").await;
    moderator.wait_visible("menu").await;
    let perm = moderator.by_id("menu-permission").await;
    assert_eq!(
        perm.attr("aria-checked").await.unwrap().as_deref(),
        Some("false")
    );
    perm.click().await.unwrap();
    moderator
        .wait_for(
            "the permission to be on",
            "return document.getElementById('menu-permission').getAttribute('aria-checked') === 'true'",
        )
        .await;
    moderator.shot(&world, "moderator-permission-on").await;
    moderator.quit().await;
    let (_, lr) = moderator_api
        .get(&format!("/api/live-rooms/{}", demo.live_room.id))
        .await;
    assert_eq!(lr["participants_may_record"], true);

    // The participant's app hears of it (Record is back), and the kept recording goes up.
    app.wait_for(
        "Record to come back for the participant",
        "return !!window.__seen && window.__seen.some((t) => t.startsWith('A moderator let participants record'))",
    )
    .await;
    app.click("more-options").await;
    app.wait_visible("menu").await;
    assert_eq!(app.menu_items().await, [RECORD]);
    app.click("more-options").await;
    let upload_here = app
        .client
        .find(fantoccini::Locator::Css(".recording--local_only button"))
        .await
        .unwrap();
    assert_eq!(upload_here.text().await.unwrap(), "Upload here");
    upload_here.click().await.unwrap();
    app.wait_uploaded(2).await;
    app.shot(&world, "participant-uploaded-later").await;
    app.quit().await;

    // ---- a guest records Group C with the keyboard only ---------------------------------
    let mut app = world.app("guest").await;
    app.join_as_guest(&base, &demo.live_room.invite_code, "Guest Gita")
        .await;
    app.shot(&world, "guest-rooms").await;
    app.enter(&room_c.name).await;
    app.paint_stage(GUEST_RGB).await;
    assert_eq!(
        focused_id(&app).await,
        "more-options",
        "the room opens on 3 Dots"
    );
    press(&app, ENTER).await;
    app.wait_visible("menu").await;
    assert_eq!(focused_id(&app).await, "menu-record");
    press(&app, ENTER).await;
    app.wait_dialog(ASK_START).await;
    assert_eq!(
        focused_id(&app).await,
        "dialog-primary",
        "Start recording has focus"
    );
    press(&app, ENTER).await;
    app.wait_dialog(RECORDED).await;
    assert_eq!(
        focused_id(&app).await,
        "dialog-primary",
        "Confirm has focus"
    );
    press(&app, ENTER).await;
    check_indicator(&app, false).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    app.shot(&world, "guest-indicator").await;
    assert_eq!(
        focused_id(&app).await,
        "more-options",
        "focus is back on 3 Dots"
    );
    press(&app, ENTER).await;
    app.wait_visible("menu").await;
    assert_eq!(focused_id(&app).await, "menu-stop");
    press(&app, ENTER).await;
    wait_saved(&app).await;
    app.wait_uploaded(1).await;
    app.shot(&world, "guest-uploaded").await;
    app.quit().await;

    // ---- where the recordings landed, and who may see them ------------------------------
    let participant_api = Api::sign_in(
        &base,
        &demo.participant_username,
        &demo.participant_password,
    )
    .await;
    let folder_path = format!("/api/live-rooms/{}/breakout-recordings", demo.live_room.id);
    let (status, folder) = moderator_api.get(&folder_path).await;
    assert_eq!(status, 200);
    let folders = folder["folders"].as_array().unwrap();
    let names = |i: usize| -> Vec<String> { entry_titles(&folders[i]) };
    assert_eq!(folders[0]["breakout_room"]["id"], room_a.id.as_str());
    assert_eq!(names(0), ["Demo Teacher"]);
    assert_eq!(names(1), ["Demo Student", "Demo Student"]);
    assert_eq!(names(2), ["Guest Gita"]);
    let (status, _) = participant_api.get(&folder_path).await;
    assert!(
        status == 403 || status == 404,
        "a participant cannot see the folder ({status})"
    );
    let (_, mine) = moderator_api.get("/api/me/media").await;
    assert_eq!(entry_titles(&mine), ["Demo Teacher"]);
    let (_, mine) = participant_api.get("/api/me/media").await;
    assert_eq!(entry_titles(&mine), ["Demo Student", "Demo Student"]);
    let (_, channel) = participant_api
        .get(&format!("/api/channels/{}/media", demo.channel_id))
        .await;
    let mut in_channel = entry_titles(&channel);
    in_channel.sort();
    assert_eq!(
        in_channel,
        ["Demo Student", "Demo Student", "Demo Teacher"],
        "the guest's recording is in the folder only"
    );

    // Every file decodes cleanly and shows what its recorder painted on the stage.
    let downloads = world.env.dir().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    for (i, rgb) in [(0, MODERATOR_RGB), (1, PARTICIPANT_RGB), (2, GUEST_RGB)] {
        for entry in folders[i]["entries"].as_array().unwrap() {
            let file = downloads.join(format!("{}.mp4", entry["id"].as_str().unwrap()));
            let url = entry["download_url"].as_str().unwrap();
            assert_eq!(moderator_api.download(url, &file).await, 200);
            assert_eq!(
                e2e::media::decode_errors(&file).unwrap(),
                "",
                "{} decodes cleanly",
                file.display()
            );
            let probe = e2e::media::probe(&file).unwrap();
            assert!(probe.duration > 1.5, "{}: {probe:?}", file.display());
            assert_colour(&file, 1.0, mean_rgb(&file, 1.0), rgb, 40.0);
        }
    }
}
