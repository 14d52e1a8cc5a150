//! Timers (one-shot, periodic, reset, remove, poll timeouts) and the
//! cross-thread eventfd wake, on both backends.

mod common;

use std::time::{Duration, Instant};

use common::reactors;
use ct_ring::Event;

#[test]
fn backend_is_reported() {
    for r in reactors("backend_is_reported") {
        println!("{} -> {}", r.backend(), r.describe());
        assert!(r.describe().starts_with(r.backend().name()));
    }
}

#[test]
fn timers() {
    let ms = Duration::from_millis;
    for mut r in reactors("timers") {
        let b = r.backend();
        let t0 = Instant::now();
        // A poll with nothing to do returns 0 at its timeout.
        assert_eq!(r.poll(Some(ms(30)), |_, e| panic!("{e:?}")).unwrap(), 0);
        let waited = t0.elapsed();
        assert!(waited >= ms(30) && waited < ms(500), "{b}: {waited:?}");

        let t0 = Instant::now();
        let once = r.timer_add(Some(t0 + ms(60)), None);
        let tick = r.timer_add(Some(t0 + ms(20)), Some(ms(20)));
        let gone = r.timer_add(Some(t0 + ms(10)), None);
        assert!(r.timer_remove(gone));
        let later = r.timer_add(None, None);
        assert!(r.timer_reset(later, Some(t0 + ms(200))));
        let mut fired: Vec<(ct_ring::TimerId, Duration)> = Vec::new();
        // Run for 130 ms (longer if the box is so loaded that `once` is late).
        while t0.elapsed() < ms(130) || !fired.iter().any(|f| f.0 == once) {
            assert!(t0.elapsed() < ms(2000), "{b}: {fired:?}");
            r.poll(None, |_, e| match e {
                Event::Timer(id) => fired.push((id, t0.elapsed())),
                other => panic!("{other:?}"),
            })
            .unwrap();
        }
        let span = t0.elapsed();
        let once_at: Vec<_> = fired.iter().filter(|f| f.0 == once).collect();
        assert_eq!(once_at.len(), 1, "{b}: {fired:?}");
        assert!(once_at[0].1 >= ms(60), "{b}: {fired:?}");
        // Ticks every 20 ms; late ticks are not replayed, so a loaded box
        // may see fewer, never more.
        let ticks: Vec<_> = fired.iter().filter(|f| f.0 == tick).map(|f| f.1).collect();
        let most = (span.as_millis() / 20) as usize;
        assert!(
            ticks.len() >= 2 && ticks.len() <= most,
            "{b}: {span:?}: {fired:?}"
        );
        assert!(fired.iter().all(|f| f.0 != gone && f.0 != later));
        // Stop the tick; the re-armed `later` fires at 200 ms.
        assert!(r.timer_reset(tick, None));
        let mut got = Vec::new();
        while got.is_empty() {
            r.poll(Some(ms(500)), |_, e| got.push(e.to_string_for_test()))
                .unwrap();
        }
        assert_eq!(got, vec![format!("timer {later:?}")], "{b}");
        assert!(t0.elapsed() >= ms(200), "{b}");
        assert!(!r.timer_remove(gone));
    }
}

trait ForTest {
    fn to_string_for_test(&self) -> String;
}

impl ForTest for Event<'_> {
    fn to_string_for_test(&self) -> String {
        match self {
            Event::Timer(id) => format!("timer {id:?}"),
            other => format!("{other:?}"),
        }
    }
}

#[test]
fn wake_from_another_thread() {
    for mut r in reactors("wake_from_another_thread") {
        let b = r.backend();
        let w = r.waker();
        let t0 = Instant::now();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            w.wake().unwrap();
            w.wake().unwrap(); // coalesces with the first
        });
        let mut wakes = 0;
        while wakes == 0 {
            r.poll(Some(Duration::from_secs(5)), |_, e| match e {
                Event::Wake => wakes += 1,
                other => panic!("{other:?}"),
            })
            .unwrap();
            assert!(t0.elapsed() < Duration::from_secs(5), "{b}: no wake");
        }
        h.join().unwrap();
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(50), "{b}");
        // Both wakes happened before the reactor read the counter, or the
        // second one is still pending: at most one more Wake.
        r.poll(Some(Duration::from_millis(20)), |_, e| match e {
            Event::Wake => wakes += 1,
            other => panic!("{other:?}"),
        })
        .unwrap();
        assert!((1..=2).contains(&wakes), "{b}: {wakes}");
        // And the reactor goes back to sleep afterwards.
        assert_eq!(
            r.poll(Some(Duration::from_millis(20)), |_, _| {}).unwrap(),
            0
        );
        // Many wakers, many threads.
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let w = r.waker();
                std::thread::spawn(move || w.wake().unwrap())
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let mut n = 0;
        r.poll(Some(Duration::from_secs(5)), |_, e| {
            assert!(matches!(e, Event::Wake));
            n += 1
        })
        .unwrap();
        assert_eq!(n, 1, "{b}: wakes coalesce");
    }
}
