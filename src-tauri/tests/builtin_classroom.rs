//! The README's run command: the app starts its built-in classroom with the demo data, the
//! start screen says how to sign in and is filled in already, and a moderator gets from there
//! to a breakout room where Record is offered, with no configuration at all.

#![allow(clippy::unwrap_used)] // a failed step should stop the test right there

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_demo_classroom_needs_no_configuration() {
    let world = World::start("builtin_classroom", 1440, 900).await;
    let mut app = world.app_with_builtin_classroom("newcomer").await;
    app.wait_visible("demo-hint").await;
    let hint = app.text("demo-hint").await;
    for want in [
        "teacher",
        "teacher-demo",
        "student",
        "student-demo",
        "invite code",
    ] {
        assert!(hint.contains(want), "{want:?} in {hint:?}");
    }
    let server = app
        .js("return document.getElementById('sign-in-server').value")
        .await;
    let server = server.as_str().unwrap().to_owned();
    assert!(server.starts_with("http://127.0.0.1:"), "{server}");
    app.shot(&world, "start-with-demo").await;
    // Only the user name and password are left to type.
    app.fill("sign-in-username", "teacher").await;
    app.fill("sign-in-password", "teacher-demo").await;
    app.click("sign-in-submit").await;
    app.wait_visible("screen-rooms").await;
    app.wait_for(
        "the demo's breakout rooms",
        "return document.querySelectorAll('.rooms__enter').length === 3",
    )
    .await;
    app.enter("Group A").await;
    app.click("more-options").await;
    app.wait_visible("menu").await;
    assert_eq!(app.menu_items().await[0], RECORD);
    app.shot(&world, "demo-room").await;
    app.quit().await;
}
