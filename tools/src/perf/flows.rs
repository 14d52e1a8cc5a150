//! `ctperf flows`: real TCP and UDP flows between two namespaces through
//! a firewall namespace, for what needs the kernel to track real traffic.
//! Builds client, firewall and server namespaces (veths in 10.201.0.0/16,
//! forwarding and a stateful nftables ruleset in the firewall, no route
//! anywhere else; needs `ip` and `nft`), opens the flows
//! (each TCP connection and UDP flow exchanges an echo), holds them for a
//! while so that the firewall's table can be looked at (its namespace name
//! is printed), then closes them and removes the namespaces.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::netns;

/// What to open.
#[derive(Debug, Clone)]
pub struct FlowsSpec {
    pub tcp: u32,
    pub udp: u32,
    /// Seconds the flows stay open.
    pub hold: f64,
    /// Name prefix of the namespaces.
    pub prefix: String,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct FlowsReport {
    pub fw_namespace: String,
    pub tcp_connected: u32,
    pub tcp_echoed: u32,
    pub udp_echoed: u32,
    /// Entries in the firewall's table while the flows were open.
    pub fw_entries: u64,
    pub seconds: f64,
}

const SV: &str = "10.201.2.2";

fn ip(args: &[&str]) -> Result<(), String> {
    let o = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

struct Topology {
    names: [String; 3],
}

impl Topology {
    fn up(prefix: &str) -> Result<Topology, String> {
        let names = ["cl", "fw", "sv"].map(|r| format!("{prefix}{r}"));
        let t = Topology { names };
        let [cl, fw, sv] = &t.names;
        for n in &t.names {
            ip(&["netns", "add", n])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
        }
        ip(&[
            "link", "add", "pfa", "netns", cl, "type", "veth", "peer", "name", "pfb", "netns", fw,
        ])?;
        ip(&[
            "link", "add", "pfc", "netns", fw, "type", "veth", "peer", "name", "pfd", "netns", sv,
        ])?;
        for (ns, dev, addr) in [
            (cl, "pfa", "10.201.1.2/24"),
            (fw, "pfb", "10.201.1.1/24"),
            (fw, "pfc", "10.201.2.1/24"),
            (sv, "pfd", "10.201.2.2/24"),
        ] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        ip(&[
            "-n",
            cl,
            "route",
            "add",
            "10.201.2.0/24",
            "via",
            "10.201.1.1",
        ])?;
        ip(&[
            "-n",
            sv,
            "route",
            "add",
            "10.201.1.0/24",
            "via",
            "10.201.2.1",
        ])?;
        let fwd = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                fw,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ])
            .status()
            .map_err(|e| e.to_string())?;
        if !fwd.success() {
            return Err("cannot enable forwarding in the firewall namespace".into());
        }
        // A stateful ruleset: without a ct expression the namespace would
        // not track connections at all.
        let rules = "table inet ctperf {\n chain forward {\n  type filter hook forward priority 0; policy accept;\n  \
                     ct state established,related counter accept\n  ct state new counter accept\n }\n}\n";
        let mut nft = std::process::Command::new("ip")
            .args(["netns", "exec", fw, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("nft: {e}"))?;
        if let Some(mut i) = nft.stdin.take() {
            let _ = i.write_all(rules.as_bytes());
        }
        if !nft.wait().map_err(|e| e.to_string())?.success() {
            return Err("nft: cannot load the firewall's ruleset".into());
        }
        Ok(t)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = ip(&["netns", "del", n]);
        }
    }
}

fn conntrack_count(ns: &str) -> u64 {
    std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "cat",
            "/proc/sys/net/netfilter/nf_conntrack_count",
        ])
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

/// Runs the flows; `on_up(fw_namespace)` is called once they are open.
pub fn run(spec: &FlowsSpec, on_up: impl FnOnce(&str)) -> Result<FlowsReport, String> {
    let t0 = Instant::now();
    let topo = Topology::up(&spec.prefix)?;
    let [cl, fw, sv] = topo.names.clone();
    let stop = Arc::new(AtomicBool::new(false));
    // the server: TCP echo (a thread per connection) and UDP echo
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let (stop_s, sv_ns) = (stop.clone(), sv.clone());
    let server = std::thread::spawn(move || {
        let setup = netns::enter(&sv_ns)
            .map_err(|e| e.to_string())
            .and_then(|_| {
                let l = TcpListener::bind((SV, 7)).map_err(|e| e.to_string())?;
                let u = UdpSocket::bind((SV, 7)).map_err(|e| e.to_string())?;
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                u.set_read_timeout(Some(Duration::from_millis(50)))
                    .map_err(|e| e.to_string())?;
                Ok((l, u))
            });
        let (l, u) = match setup {
            Ok(x) => {
                let _ = ready_tx.send(Ok(()));
                x
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        let mut buf = [0u8; 1500];
        let mut conns = Vec::new();
        while !stop_s.load(Ordering::Relaxed) {
            while let Ok((c, _)) = l.accept() {
                let _ = c.set_nonblocking(false);
                let _ = c.set_read_timeout(Some(Duration::from_millis(50)));
                conns.push(c);
            }
            for c in &mut conns {
                if let Ok(n) = c.read(&mut buf) {
                    if n > 0 {
                        let _ = c.write_all(&buf[..n]);
                    }
                }
            }
            if let Ok((n, from)) = u.recv_from(&mut buf) {
                let _ = u.send_to(&buf[..n], from);
            }
        }
    });
    ready_rx
        .recv()
        .map_err(|_| "server thread died".to_string())??;
    // the client
    let spec_c = spec.clone();
    let (cl_ns, stop_c) = (cl.clone(), stop.clone());
    let (up_tx, up_rx) = std::sync::mpsc::channel::<(u32, u32, u32)>();
    let client = std::thread::spawn(move || -> Result<(), String> {
        netns::enter(&cl_ns).map_err(|e| e.to_string())?;
        let to = SocketAddr::from(([10, 201, 2, 2], 7));
        let mut tcp = Vec::new();
        let mut echoed = 0;
        for _ in 0..spec_c.tcp {
            if let Ok(mut c) = TcpStream::connect_timeout(&to, Duration::from_secs(2)) {
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let mut b = [0u8; 4];
                if c.write_all(b"ping").is_ok() && c.read_exact(&mut b).is_ok() {
                    echoed += 1;
                }
                tcp.push(c);
            }
        }
        let mut udp_ok = 0;
        let mut udp = Vec::new();
        for _ in 0..spec_c.udp {
            let Ok(u) = UdpSocket::bind("0.0.0.0:0") else {
                continue;
            };
            let _ = u.set_read_timeout(Some(Duration::from_secs(2)));
            let mut b = [0u8; 4];
            if u.send_to(b"ping", to).is_ok() && u.recv_from(&mut b).is_ok() {
                udp_ok += 1;
            }
            udp.push(u);
        }
        let _ = up_tx.send((tcp.len() as u32, echoed, udp_ok));
        while !stop_c.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    });
    let (connected, echoed, udp_ok) = up_rx.recv().map_err(|_| "client thread died".to_string())?;
    on_up(&fw);
    let entries = conntrack_count(&fw);
    std::thread::sleep(Duration::from_secs_f64(spec.hold));
    stop.store(true, Ordering::Relaxed);
    let _ = client.join();
    let _ = server.join();
    Ok(FlowsReport {
        fw_namespace: fw,
        tcp_connected: connected,
        tcp_echoed: echoed,
        udp_echoed: udp_ok,
        fw_entries: entries,
        seconds: t0.elapsed().as_secs_f64(),
    })
}
