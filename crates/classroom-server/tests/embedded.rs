//! The server as the desktop app embeds it: `serve` on port 0 inside the app's runtime,
//! `seed_demo` through the running server's classroom, and dropping the handle stops it.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use classroom_server::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_demo_signs_in_and_dropping_the_handle_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().to_path_buf());
    config.addr = "127.0.0.1:0".parse().unwrap();
    let server = classroom_server::serve(config).await.unwrap();
    assert_ne!(server.local_addr().port(), 0);
    let demo = server.classroom().seed_demo().await.unwrap();
    assert_eq!(demo.live_room.breakout_rooms.len(), 3);
    let base = server.base_url();
    let http = reqwest::Client::new();
    for (user, pass, role) in [
        (
            &demo.moderator_username,
            &demo.moderator_password,
            "moderator",
        ),
        (
            &demo.participant_username,
            &demo.participant_password,
            "participant",
        ),
    ] {
        let s: classroom_api::SessionResponse = http
            .post(format!("{base}/api/sessions"))
            .json(&serde_json::json!({ "username": user, "password": pass }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let room: classroom_api::LiveRoom = http
            .get(format!("{base}/api/live-rooms/{}", demo.live_room.id))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(serde_json::to_value(room.my_role).unwrap(), role);
    }
    let guest = http
        .post(format!("{base}/api/guests"))
        .json(&serde_json::json!({ "invite_code": demo.live_room.invite_code.to_uppercase(), "display_name": "Demo guest" }))
        .send()
        .await
        .unwrap();
    assert_eq!(guest.status(), 200, "invite codes are case-insensitive");

    drop(server);
    let mut refused = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if reqwest::get(format!("{base}/")).await.is_err() {
            refused = true;
            break;
        }
    }
    assert!(
        refused,
        "the server still answers after its handle was dropped"
    );
}
