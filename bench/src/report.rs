//! Reports: a compact human-readable form and one JSON object (`--json`),
//! plus the measurements every report shares (latency quantiles, the
//! benchmark's own CPU time, machine load).

use std::time::Duration;

use anyhow::Result;
use hdrhistogram::Histogram;
use serde::Serialize;

/// A benchmark result that can be printed for people or for `BENCHMARKS.md`.
pub trait Report: Serialize {
    /// A few aligned lines, ending in a newline.
    fn human(&self) -> String;
}

/// Prints `report` as text or as one JSON line.
pub fn emit<R: Report>(report: &R, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        print!("{}", report.human());
    }
    Ok(())
}

/// A latency histogram in microseconds, from 1 µs to 10 minutes.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static histogram bounds are valid")
}

/// Records `d` into a histogram made by [`latency_histogram`].
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(d.as_micros().max(1) as u64);
}

/// Latency quantiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }

    /// `p50 1.2 ms  p90 …  p99 …  max …`
    pub fn human(&self) -> String {
        if self.count == 0 {
            return "no samples".into();
        }
        format!(
            "p50 {}  p90 {}  p99 {}  max {}  (mean {}, n={})",
            ms(self.p50_ms),
            ms(self.p90_ms),
            ms(self.p99_ms),
            ms(self.max_ms),
            ms(self.mean_ms),
            self.count
        )
    }
}

fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2} ms")
    } else if v < 100.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// What the machine was doing, so noisy runs can be recognised afterwards.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    /// 1-minute load average at the end of the run (Linux only).
    pub load_avg_1m: Option<f64>,
}

impl Machine {
    pub fn now() -> Self {
        let load_avg_1m = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()));
        Self {
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            load_avg_1m,
        }
    }

    pub fn human(&self) -> String {
        match self.load_avg_1m {
            Some(l) => format!("{} cores, load average {l:.2}", self.cores),
            None => format!("{} cores", self.cores),
        }
    }
}

/// CPU time (user + system) this process has used so far.
pub fn process_cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU time (user + system) another process has used so far, from
/// `/proc/<pid>/stat`.
pub fn pid_cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the comm field: state is f[0]; utime f[11], stime f[12].
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(Duration::from_secs_f64(ticks / hz))
}

/// CPU time (user + system) of another process's live threads, summed by
/// thread name, from `/proc/<pid>/task/*/stat`. Threads that have exited
/// are not in it (their time is only in [`pid_cpu_time`]).
pub fn pid_thread_cpu(pid: u32) -> Option<std::collections::BTreeMap<String, Duration>> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut by_name = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // exited meanwhile
        };
        let Some((head, after)) = stat.rsplit_once(')') else {
            continue;
        };
        let name = head.split_once('(').map_or("?", |(_, n)| n).to_string();
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        *by_name.entry(name).or_insert(Duration::ZERO) +=
            Duration::from_secs_f64((ticks(11) + ticks(12)) / hz);
    }
    Some(by_name)
}

/// Where a process's CPU went between two [`pid_thread_cpu`] readings:
/// seconds per thread name, plus `exited threads` for the part of `total`
/// (the process's CPU over the same span) no live thread accounts for.
pub fn thread_cpu_split(
    before: &std::collections::BTreeMap<String, Duration>,
    after: &std::collections::BTreeMap<String, Duration>,
    total: Duration,
) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let mut live = Duration::ZERO;
    for (name, t) in after {
        let d = t.saturating_sub(before.get(name).copied().unwrap_or_default());
        live += d;
        if !d.is_zero() {
            out.insert(name.clone(), d.as_secs_f64());
        }
    }
    let exited = total.saturating_sub(live);
    if !exited.is_zero() {
        out.insert("exited threads".to_string(), exited.as_secs_f64());
    }
    out
}

/// A memory line of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`, `RssAnon:`…)
/// in the kB (KiB) the kernel reports.
pub fn pid_status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `1234567.8` → `1,234,568`.
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1536` → `1.5 KiB`.
pub fn bytes(v: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = v as f64;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < units.len() {
        x /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v} B")
    } else {
        format!("{x:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This thread's own CPU time.
    fn thread_cpu() -> Duration {
        // SAFETY: getrusage only writes into the zeroed struct we pass.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
            return Duration::ZERO;
        }
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        tv(usage.ru_utime) + tv(usage.ru_stime)
    }

    #[test]
    fn thread_cpu_is_read_by_name_and_exited_threads_are_the_rest() {
        let pid = std::process::id();
        let before = pid_thread_cpu(pid).expect("/proc is readable");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let burner = std::thread::Builder::new()
            .name("skb-burner".into())
            .spawn(move || {
                let mut x = 0u64;
                while thread_cpu() < Duration::from_millis(200) {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
                ready_tx.send(()).unwrap();
                done_rx.recv().unwrap();
                x
            })
            .unwrap();
        ready_rx.recv().unwrap();
        let after = pid_thread_cpu(pid).unwrap();
        let burned = after.get("skb-burner").copied().unwrap_or_default();
        assert!(burned >= Duration::from_millis(150), "{after:?}");
        // The burner is gone from a later reading: its time shows up as
        // exited when the process total still has it.
        done_tx.send(()).unwrap();
        burner.join().unwrap();
        let later = pid_thread_cpu(pid).unwrap();
        assert!(!later.contains_key("skb-burner"));
        let split = thread_cpu_split(&before, &later, Duration::from_secs(1000));
        assert!(split["exited threads"] > 900.0, "{split:?}");
        let split = thread_cpu_split(&before, &after, burned);
        assert!(
            split.get("skb-burner").copied().unwrap_or(0.0) >= 0.15,
            "{split:?}"
        );
        assert!(!split.contains_key("exited threads"), "{split:?}");
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1234567.8), "1,234,568");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
    }

    #[test]
    fn latency_quantiles_are_in_ms() {
        let mut h = latency_histogram();
        for i in 1..=100u64 {
            record(&mut h, Duration::from_millis(i));
        }
        let l = Latency::from_histogram(&h);
        assert_eq!(l.count, 100);
        assert!((l.p50_ms - 50.0).abs() < 0.1, "{l:?}");
        assert!((l.max_ms - 100.0).abs() < 0.1, "{l:?}");
        assert_eq!(
            Latency::from_histogram(&latency_histogram()).human(),
            "no samples"
        );
    }

    #[test]
    fn reads_its_own_proc_entries() {
        let pid = std::process::id();
        assert!(pid_status_kb(pid, "VmRSS:").is_some_and(|kb| kb > 0));
        assert!(pid_status_kb(pid, "NoSuchKey:").is_none());
        assert!(pid_cpu_time(pid).is_some());
        assert!(pid_cpu_time(u32::MAX).is_none(), "no such process");
    }
}
