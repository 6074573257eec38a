//! The VIPs on the announce interface, over rtnetlink: the only I/O of
//! announcing. The socket is opened inside the daemon's namespace (a short
//! thread enters it), so every request lands there whatever thread sends it.

use lvs_common::rtnl::to_io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::{AddressMessageBuilder, Handle, LinkDummy, LinkUnspec};

/// The announce interface as found or created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub index: u32,
    /// This daemon created it (and deletes it on a clean stop).
    pub created: bool,
}

#[derive(Clone)]
pub struct Addrs {
    handle: Handle,
}

/// Runs `f` on a short thread inside `netns` (or here).
pub fn in_netns<T: Send>(netns: Option<&str>, f: impl FnOnce() -> T + Send) -> std::io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            if let Some(ns) = netns {
                lvs_common::netns::enter(ns).map_err(std::io::Error::other)?;
            }
            Ok(f())
        })
        .join()
        .map_err(|_| std::io::Error::other("the namespace thread panicked"))?
    })
}

fn message(index: u32, vip: IpAddr) -> AddressMessage {
    match vip {
        IpAddr::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(a, 32)
            .build(),
        IpAddr::V6(a) => AddressMessageBuilder::<Ipv6Addr>::new()
            .index(index)
            .address(a, 128)
            .build(),
    }
}

impl Addrs {
    /// A route-netlink socket in `netns`; its connection runs on the
    /// current tokio runtime.
    pub fn connect(netns: Option<&str>) -> std::io::Result<Addrs> {
        let rt = tokio::runtime::Handle::current();
        let (connection, handle, _) = in_netns(netns, move || {
            let _guard = rt.enter();
            rtnetlink::new_connection()
        })??;
        tokio::spawn(connection);
        Ok(Addrs { handle })
    }

    async fn index_of(&self, name: &str) -> std::io::Result<Option<u32>> {
        let found = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await;
        match found {
            Ok(link) => Ok(link.map(|l| l.header.index)),
            Err(e) => {
                let e = to_io(e);
                if e.raw_os_error() == Some(libc::ENODEV) {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The interface `name`, created as a dummy interface if missing, and
    /// set up either way (a routing daemon ignores a down interface).
    pub async fn ensure(&self, name: &str) -> std::io::Result<Iface> {
        let mut created = false;
        let index = match self.index_of(name).await? {
            Some(i) => i,
            None => {
                match self
                    .handle
                    .link()
                    .add(LinkDummy::new(name).up().build())
                    .execute()
                    .await
                    .map_err(to_io)
                {
                    Ok(()) => created = true,
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                self.index_of(name)
                    .await?
                    .ok_or_else(|| std::io::Error::other(format!("{name} vanished")))?
            }
        };
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(to_io)?;
        Ok(Iface {
            name: name.to_string(),
            index,
            created,
        })
    }

    /// Adds `vip` as a host address (/32, /128; IPv6 without duplicate
    /// address detection, so it is usable at once). Present already: done.
    pub async fn add(&self, iface: &Iface, vip: IpAddr) -> std::io::Result<()> {
        let mut req = self.handle.address().add(iface.index, vip, 0);
        *req.message_mut() = message(iface.index, vip);
        if vip.is_ipv6() {
            req.message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match req.execute().await.map_err(to_io) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            other => other,
        }
    }

    /// Removes `vip`; already gone: done.
    pub async fn del(&self, iface: &Iface, vip: IpAddr) -> std::io::Result<()> {
        match self
            .handle
            .address()
            .del(message(iface.index, vip))
            .execute()
            .await
            .map_err(to_io)
        {
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(()),
            other => other,
        }
    }

    /// The host addresses (/32, /128) on the interface.
    pub async fn list(&self, iface: &Iface) -> std::io::Result<Vec<IpAddr>> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(iface.index)
            .execute()
            .try_collect()
            .await
            .map_err(to_io)?;
        Ok(messages
            .into_iter()
            .filter(|m| {
                m.header.index == iface.index
                    && match m.header.family {
                        AddressFamily::Inet => m.header.prefix_len == 32,
                        AddressFamily::Inet6 => m.header.prefix_len == 128,
                        _ => false,
                    }
            })
            .filter_map(|m| {
                m.attributes.into_iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some(ip),
                    _ => None,
                })
            })
            .collect())
    }

    /// Deletes the interface (one this daemon created).
    pub async fn delete(&self, iface: &Iface) -> std::io::Result<()> {
        match self
            .handle
            .link()
            .del(iface.index)
            .execute()
            .await
            .map_err(to_io)
        {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            other => other,
        }
    }
}
