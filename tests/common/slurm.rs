//! A one-node Slurm of the test's own (scripts/slurm-local.sh, its state
//! in a temporary directory, on ports of its own), stopped when dropped.
//! Shared by almr's and almr-trainer's tests (`#[path]`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A running Slurm.
pub struct Slurm {
    env: Vec<(String, String)>,
    script: PathBuf,
}

impl Slurm {
    /// Starts one with its state under `dir`; `script` is
    /// scripts/slurm-local.sh.
    pub fn start(dir: &Path, script: &Path) -> Slurm {
        // munged runs as the munge user: it must reach its socket's directory.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
        let port = 20000 + (std::process::id() % 10000) as u16 * 2;
        let state = dir.join("slurm");
        let env = vec![
            ("ALMR_SLURM_DIR".into(), state.display().to_string()),
            ("ALMR_SLURMCTLD_PORT".into(), port.to_string()),
            ("ALMR_SLURMD_PORT".into(), (port + 1).to_string()),
            (
                "SLURM_CONF".into(),
                state.join("slurm.conf").display().to_string(),
            ),
        ];
        let slurm = Slurm {
            env,
            script: script.to_path_buf(),
        };
        let out = slurm.script("start");
        assert!(
            out.status.success(),
            "scripts/slurm-local.sh start (as root: it installs Debian's slurm packages):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        slurm
    }

    fn script(&self, what: &str) -> Output {
        self.command("bash")
            .arg(&self.script)
            .arg(what)
            .output()
            .unwrap()
    }

    /// A command that talks to this Slurm.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c.env("RAYON_NUM_THREADS", "1");
        c
    }

    /// Waits until the queue is empty.
    pub fn wait_idle(&self, limit: Duration) {
        let t0 = Instant::now();
        loop {
            let out = self
                .command("squeue")
                .args(["-h", "-o", "%i"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            if out.stdout.is_empty() {
                return;
            }
            assert!(
                t0.elapsed() < limit,
                "jobs still queued: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        self.script("stop");
    }
}
