//! Where the machine's CPU time went during a phase, from the `cpu` line of `/proc/stat`: on a
//! virtual machine the hypervisor can take a share for other guests (`steal`), and a figure
//! measured while it does says more about the neighbours than about the code.

/// The machine's CPU time counters at one moment, in clock ticks, summed over all cores.
#[derive(Clone, Copy)]
pub struct CpuTimes {
    /// user, nice, system, idle, iowait, irq, softirq, steal (guest time is inside user).
    ticks: [u64; 8],
}

/// Shares of the machine's CPU time between two moments, in percent.
#[derive(Clone, Copy, Debug)]
pub struct Shares {
    pub steal: f64,
    pub idle: f64,
}

impl CpuTimes {
    pub fn now() -> CpuTimes {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        CpuTimes {
            ticks: parse_cpu_line(&stat),
        }
    }

    /// The shares of the time since `self`.
    pub fn shares_since(&self) -> Shares {
        shares(&self.ticks, &CpuTimes::now().ticks)
    }
}

fn parse_cpu_line(stat: &str) -> [u64; 8] {
    let mut ticks = [0u64; 8];
    if let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) {
        for (slot, field) in ticks.iter_mut().zip(line.split_whitespace().skip(1)) {
            *slot = field.parse().unwrap_or(0);
        }
    }
    ticks
}

/// The machine's CPU time over several stretches (the slices of one interleaved phase).
#[derive(Clone, Copy, Default)]
pub struct Spent {
    ticks: [u64; 8],
}

impl Spent {
    /// Adds the time from `start` to now.
    pub fn add_since(&mut self, start: &CpuTimes) {
        self.add(start, &CpuTimes::now());
    }

    fn add(&mut self, start: &CpuTimes, end: &CpuTimes) {
        for (sum, (a, b)) in self.ticks.iter_mut().zip(end.ticks.iter().zip(start.ticks)) {
            *sum += a.saturating_sub(b);
        }
    }

    /// The shares of all the time added.
    pub fn shares(&self) -> Shares {
        shares(&[0; 8], &self.ticks)
    }
}

fn shares(before: &[u64; 8], after: &[u64; 8]) -> Shares {
    let delta: [u64; 8] = std::array::from_fn(|i| after[i].saturating_sub(before[i]));
    let total = delta.iter().sum::<u64>().max(1) as f64;
    Shares {
        steal: delta[7] as f64 * 100.0 / total,
        idle: (delta[3] + delta[4]) as f64 * 100.0 / total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_and_idle_are_shares_of_all_the_time_that_passed() {
        let before = parse_cpu_line("cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 1 2 3\n");
        let after = parse_cpu_line("cpu  160 0 70 900 10 0 0 70 0 0\n");
        // 60 + 20 + 100 + 30 = 210 ticks passed: 30 stolen, 100 idle.
        let s = shares(&before, &after);
        assert!((s.steal - 30.0 * 100.0 / 210.0).abs() < 1e-9, "{s:?}");
        assert!((s.idle - 100.0 * 100.0 / 210.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn stretches_add_up_before_the_shares_are_taken() {
        let at = |line: &str| CpuTimes {
            ticks: parse_cpu_line(line),
        };
        let mut spent = Spent::default();
        // 100 ticks with none stolen, then 300 with 100 stolen: 25% of the whole, not the
        // mean of the two shares taken apart (17%).
        spent.add(
            &at("cpu 0 0 0 0 0 0 0 0\n"),
            &at("cpu 60 0 20 20 0 0 0 0\n"),
        );
        spent.add(
            &at("cpu 100 0 0 0 0 0 0 0\n"),
            &at("cpu 200 0 0 100 0 0 0 100\n"),
        );
        let s = spent.shares();
        // 400 ticks in all: 100 stolen, 120 idle.
        assert!((s.steal - 25.0).abs() < 1e-9, "{s:?}");
        assert!((s.idle - 30.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn a_kernel_without_a_steal_field_reads_as_none_stolen() {
        let before = parse_cpu_line("cpu 1 2 3 4\n");
        let after = parse_cpu_line("cpu 2 3 4 5\n");
        assert_eq!(shares(&before, &after).steal, 0.0);
    }
}
