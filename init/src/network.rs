//! Boot's network step and the DHCP client's place in the event loop:
//! sysctls, links and static addresses ([`crate::net`]), a DHCPv4 lease
//! when the mode is dhcp, /etc/resolv.conf and /etc/hosts.

use std::net::IpAddr;
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use settings::value::NetworkMode;
use settings::Settings;

use crate::console::Consoles;
use crate::net::dhcp::{self, DhcpClient, Event, Lease};
use crate::net::resolv::{self, HOSTS, RESOLV_CONF};
use crate::net::{self, Link, NetOptions};
use crate::sysctl;

/// How long boot waits for a first lease before going on; the client keeps
/// trying in the background after that.
const BOOT_LEASE_WAIT: Duration = Duration::from_secs(10);

pub struct Networking {
    link: Option<Link>,
    dhcp: Option<DhcpClient>,
    lease: Option<Lease>,
    static_dns: Vec<IpAddr>,
    static_address: Option<IpAddr>,
    static_prefix: u8,
    static_ntp: Vec<String>,
    hostname: String,
}

/// Applies sysctls and brings the network up; never fails the boot.
pub fn bring_up(consoles: &mut Consoles, settings: &Settings) -> Networking {
    let report = sysctl::apply_all(&settings.sysctls);
    for line in report.lines() {
        consoles.line(&format!("init: {line}"));
    }
    let report = net::configure(&settings.network, &NetOptions::default());
    for line in report.lines() {
        consoles.line(&format!("init: {line}"));
    }
    let mut n = Networking {
        link: report.primary.clone(),
        dhcp: None,
        lease: None,
        static_dns: settings.network.dns.clone(),
        static_address: settings.network.ipv4.as_ref().map(|c| c.addr),
        static_prefix: settings.network.ipv4.as_ref().map_or(0, |c| c.prefix),
        static_ntp: settings.network.ntp.clone(),
        hostname: settings.hostname.clone(),
    };
    if settings.network.mode == NetworkMode::Dhcp {
        if let Some(link) = &n.link {
            match dhcp::acquire_lease(&link.name, Some(&settings.hostname), BOOT_LEASE_WAIT) {
                Ok((client, lease)) => {
                    if let Some(lease) = lease {
                        n.apply(consoles, lease);
                    } else {
                        consoles.line(&format!(
                            "init: net: warning: {}: no DHCP lease within {} s ({}); still trying",
                            link.name,
                            BOOT_LEASE_WAIT.as_secs(),
                            client.last_error().unwrap_or("no answer")
                        ));
                    }
                    n.dhcp = Some(client);
                }
                Err(e) => consoles.line(&format!("init: net: error: DHCP client: {e}")),
            }
        } else {
            consoles.line("init: net: error: network.mode is dhcp but there is no Ethernet NIC");
        }
    }
    n.write_name_files(consoles);
    n
}

impl Networking {
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.dhcp.as_ref().map(DhcpClient::fd)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.dhcp.as_ref().and_then(DhcpClient::next_deadline)
    }

    pub fn on_readable(&mut self, consoles: &mut Consoles, now: Instant) {
        if let Some(c) = self.dhcp.as_mut() {
            let events = c.on_readable(now);
            self.handle(consoles, events);
        }
    }

    pub fn on_timer(&mut self, consoles: &mut Consoles, now: Instant) {
        let due = self.next_deadline().is_some_and(|d| now >= d);
        if let (true, Some(c)) = (due, self.dhcp.as_mut()) {
            let events = c.on_timer(now);
            self.handle(consoles, events);
        }
    }

    /// The primary NIC's name and this node's IPv4 address on it, if known.
    pub fn primary(&self) -> Option<(String, Option<IpAddr>)> {
        let link = self.link.as_ref()?;
        let addr = self
            .static_address
            .filter(IpAddr::is_ipv4)
            .or_else(|| self.lease.as_ref().map(|l| IpAddr::V4(l.address)));
        Some((link.name.clone(), addr))
    }

    /// NTP servers: the settings' first, then the DHCP lease's.
    pub fn ntp_servers(&self) -> Vec<String> {
        let mut servers = self.static_ntp.clone();
        if let Some(lease) = &self.lease {
            servers.extend(lease.ntp.iter().map(ToString::to_string));
        }
        servers
    }

    /// What VMware tools report to vCenter: the primary NIC and its address.
    pub fn guest_info(&self) -> crate::vmware::GuestInfo {
        let mut info = crate::vmware::GuestInfo {
            hostname: self.hostname.clone(),
            ..Default::default()
        };
        if let Some(link) = &self.link {
            let mut addrs = Vec::new();
            if let Some(lease) = &self.lease {
                addrs.push((IpAddr::V4(lease.address), lease.prefix));
            } else if let Some(addr) = self.static_address {
                addrs.push((addr, self.static_prefix));
            }
            info.nics.push(crate::vmware::GuestNic {
                name: link.name.clone(),
                mac: link.mac.unwrap_or_default(),
                addrs,
            });
        }
        info
    }

    /// Gives the lease back at shutdown (RFC 2131 DHCPRELEASE).
    pub fn release(&mut self, consoles: &mut Consoles) {
        if let Some(c) = self.dhcp.as_mut() {
            if self.lease.is_some() {
                let events = c.release(Instant::now());
                self.handle(consoles, events);
                consoles.line("init: DHCP lease released");
            }
        }
    }

    fn handle(&mut self, consoles: &mut Consoles, events: Vec<Event>) {
        for event in events {
            match event {
                Event::Configure(lease) => self.apply(consoles, lease),
                Event::Deconfigure(lease) => {
                    if let Some(link) = &self.link {
                        for line in net::remove_lease(link, &lease).lines() {
                            consoles.line(&format!("init: {line}"));
                        }
                    }
                    self.lease = None;
                    self.write_name_files(consoles);
                }
                Event::Failed(e) => consoles.line(&format!("init: net: warning: DHCP: {e}")),
            }
        }
    }

    fn apply(&mut self, consoles: &mut Consoles, lease: Lease) {
        let Some(link) = &self.link else { return };
        for line in net::apply_lease(link, &lease, self.lease.as_ref()).lines() {
            consoles.line(&format!("init: {line}"));
        }
        consoles.line(&format!(
            "init: net: {}: DHCP lease {}/{} from {} (router {}, DNS {})",
            link.name,
            lease.address,
            lease.prefix,
            lease.server,
            join(&lease.routers),
            join(&lease.dns)
        ));
        self.lease = Some(lease);
        self.write_name_files(consoles);
    }

    /// Takes a changed DNS server list, NTP list and hostname (a change
    /// through the appliance socket) and rewrites the name files.
    pub fn update_names(&mut self, consoles: &mut Consoles, settings: &settings::Settings) {
        self.static_dns = settings.network.dns.clone();
        self.static_ntp = settings.network.ntp.clone();
        self.hostname = settings.hostname.clone();
        self.write_name_files(consoles);
    }

    /// /etc/resolv.conf (static DNS first, then the lease's) and /etc/hosts.
    fn write_name_files(&self, consoles: &mut Consoles) {
        let lease_dns = self
            .lease
            .as_ref()
            .map(Lease::resolvers)
            .unwrap_or_default();
        let servers = resolv::merge_resolvers(&self.static_dns, &lease_dns);
        let search = self
            .lease
            .as_ref()
            .map(|l| l.search.clone())
            .unwrap_or_default();
        let address = self
            .static_address
            .or_else(|| self.lease.as_ref().map(|l| IpAddr::V4(l.address)));
        for (path, text) in [
            (RESOLV_CONF, resolv::render_resolv_conf(&servers, &search)),
            (HOSTS, resolv::render_hosts(&self.hostname, address)),
        ] {
            if let Err(e) = resolv::write_atomic(Path::new(path), &text) {
                consoles.line(&format!("init: error: {e}"));
            }
        }
    }
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
