//! Two recordings in a row from one process, through the library as the desktop app uses it.
//! Alone in its test binary because it points this process's environment at the test's
//! display and sound server, which the audio host reads.

#![allow(clippy::unwrap_used)] // a failed step should stop a test right there

use std::time::Duration;

use capture::audio::AudioSpec;
use e2e::{Stage, TestEnv, Tone, media};
use recorder::disk::DiskPolicy;
use recorder::{Recording, RecordingConfig, StopReason};

#[test]
fn two_recordings_in_a_row_both_have_picture_and_sound() {
    let env = TestEnv::start(1280, 720).unwrap();
    for (k, v) in env.vars() {
        // SAFETY: this is the only test in this binary and no other thread exists yet that
        // reads the environment.
        unsafe { std::env::set_var(k, v) };
    }
    let _stage = Stage::start(env.display(), 0, 0, 640, 360).unwrap();
    let _room = Tone::start(&env, "stage", 1000.0, 0.3).unwrap();

    for round in 0..2 {
        let out = env.dir().join(format!("take{round}.mp4"));
        let mut cfg = RecordingConfig::new(out.clone());
        cfg.region = Some("640x360+0+0".parse().unwrap());
        cfg.audio = AudioSpec {
            mic: true,
            room: true,
            ..AudioSpec::default()
        };
        cfg.disk = DiskPolicy::with_reserve_mib(8);
        let rec = Recording::start(cfg).unwrap();
        std::thread::sleep(Duration::from_secs(2));
        assert!(
            rec.status().frames > 30,
            "round {round}: frames are flowing"
        );
        let s = rec.stop().unwrap();
        assert_eq!(s.reason, StopReason::Requested);
        assert!(s.error.is_none(), "round {round}: {:?}", s.error);

        let p = media::probe(&out).unwrap();
        assert!(
            p.video_frames >= 50,
            "round {round}: {} frames",
            p.video_frames
        );
        assert_eq!(p.audio_codec.as_deref(), Some("aac"), "round {round}");
        let audio = media::audio_mono(&out).unwrap();
        let level = media::tone_median(&audio[audio.len() / 4..], 1000.0, 48_000.0);
        assert!(level > 0.1, "round {round}: room tone level {level:.3}");
        assert_eq!(media::decode_errors(&out).unwrap(), "", "round {round}");
    }
}
