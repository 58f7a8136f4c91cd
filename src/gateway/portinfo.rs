//! Finding which process listens on a TCP port (Linux `/proc`), for the "port in use" message.

use std::fs;

/// A process holding a listening socket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PortHolder {
    /// Its pid.
    pub pid: u32,
    /// Its command name (`/proc/<pid>/comm`).
    pub name: String,
}

/// Inodes of sockets in state LISTEN on `port`, from a `/proc/net/tcp`-style table.
pub fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    let mut out = Vec::new();
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 10 {
            continue;
        }
        let local_port = cols[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
        // State 0A = TCP_LISTEN.
        if local_port == Some(port) && cols[3] == "0A"
            && let Ok(inode) = cols[9].parse::<u64>() {
                out.push(inode);
            }
    }
    out
}

/// The process listening on `port`, when `/proc` lets us see it.
pub fn find_holder(port: u16) -> Option<PortHolder> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(t) = fs::read_to_string(table) {
            inodes.extend(listening_inodes(&t, port));
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let targets: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(link) = fs::read_link(fd.path())
                && targets.iter().any(|t| link.as_os_str() == t.as_str()) {
                    let name = fs::read_to_string(entry.path().join("comm")).unwrap_or_default().trim().to_string();
                    return Some(PortHolder { pid, name });
                }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listen_rows() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:4965 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000\n   1: 0100007F:4965 0100007F:9999 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000\n";
        assert_eq!(listening_inodes(t, 18789), vec![12345]);
        assert!(listening_inodes(t, 80).is_empty());
    }

    #[test]
    fn finds_our_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = find_holder(port).expect("own socket visible in /proc");
        assert_eq!(h.pid, std::process::id());
    }
}
