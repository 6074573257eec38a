//! The rtnetlink adapter: one link dump and one address dump to observe, and
//! pipelined requests to change, in the types of [`crate::domain`]. Requests
//! are kept in flight together (bounded, so the kernel's acknowledgements
//! never overrun the socket buffer) instead of waiting for each
//! acknowledgement in turn.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::{StreamExt, TryStreamExt};
use lvs_common::rtnl::to_io;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, CacheInfo};
use netlink_packet_route::link::{
    InfoData, InfoGre, InfoIpTunnel, InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::{AddressMessageBuilder, Handle, LinkUnspec};

use crate::domain::{Address, AddressSpec, Interface, Link, LinkKind};
use crate::error::Error;

/// Requests in flight at once. Each acknowledgement costs the socket's receive
/// buffer about a kilobyte; a few hundred stay far below the default buffer.
const IN_FLIGHT: usize = 256;

/// Valid lifetime the kernel reads as "forever".
const INFINITY_LIFETIME: u32 = u32::MAX;

/// Outcome of one add request.
#[derive(Debug)]
pub enum AddOutcome {
    Added,
    /// The address appeared between observation and the request (EEXIST):
    /// someone else owns it, so it is not recorded as the agent's.
    AlreadyPresent,
}

pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens a route-netlink socket in the calling thread's network namespace.
    /// Must run inside a tokio runtime: the connection is spawned on it.
    pub fn connect() -> Result<Self, Error> {
        let (connection, handle, _) = rtnetlink::new_connection()
            .map_err(|e| Error::netlink("opening a route netlink socket", e))?;
        tokio::spawn(connection);
        Ok(Netlink { handle })
    }

    pub async fn links(&self) -> Result<Vec<Link>, Error> {
        let messages: Vec<_> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink("dumping links", to_io(e)))?;
        Ok(messages
            .into_iter()
            .map(|m| Link {
                index: m.header.index,
                name: m
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    })
                    .unwrap_or_default(),
                up: m.header.flags.contains(LinkFlags::Up),
                loopback: m.header.flags.contains(LinkFlags::Loopback),
                noarp: m.header.flags.contains(LinkFlags::Noarp),
            })
            .collect())
    }

    /// Every address of every interface, both families, in one dump.
    pub async fn addresses(&self) -> Result<Vec<Address>, Error> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink("dumping addresses", to_io(e)))?;
        Ok(messages.iter().filter_map(parse_address).collect())
    }

    /// Adds the addresses to interface `index`, pipelined. Results come back in
    /// the order of `specs`.
    pub async fn add_addresses(
        &self,
        index: u32,
        specs: &[AddressSpec],
    ) -> Vec<Result<AddOutcome, std::io::Error>> {
        let requests = specs.iter().map(|spec| {
            let mut message = NetlinkMessage::from(RouteNetlinkMessage::NewAddress(
                new_address_message(index, spec),
            ));
            message.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
            message
        });
        self.pipeline(requests)
            .await
            .into_iter()
            .map(|r| match r {
                Ok(()) => Ok(AddOutcome::Added),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(AddOutcome::AlreadyPresent),
                Err(e) => Err(e),
            })
            .collect()
    }

    /// Removes the addresses from interface `index`, pipelined. An address
    /// already gone (EADDRNOTAVAIL) counts as removed.
    pub async fn delete_addresses(
        &self,
        index: u32,
        specs: &[AddressSpec],
    ) -> Vec<Result<(), std::io::Error>> {
        let requests = specs.iter().map(|spec| {
            let mut message = NetlinkMessage::from(RouteNetlinkMessage::DelAddress(
                address_message(index, spec),
            ));
            message.header.flags = NLM_F_REQUEST | NLM_F_ACK;
            message
        });
        self.pipeline(requests)
            .await
            .into_iter()
            .map(|r| match r {
                Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(()),
                other => other,
            })
            .collect()
    }

    /// Sets a link up or down, by index, or by name for a link this run
    /// created (index 0).
    pub async fn set_link_up(&self, interface: &Interface, up: bool) -> Result<(), Error> {
        let builder = if interface.index == 0 {
            LinkUnspec::new_with_name(&interface.name)
        } else {
            LinkUnspec::new_with_index(interface.index)
        };
        let message = if up { builder.up() } else { builder.down() }.build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|e| {
                Error::netlink(
                    format!("setting {interface} {}", if up { "up" } else { "down" }),
                    to_io(e),
                )
            })
    }

    /// Creates a catch-all tunnel device `name` of `kind` (collect
    /// metadata, `ip link add NAME type KIND external`): the kind's module
    /// is loaded by the kernel on the way. If the module's fallback device
    /// of that name exists then (it appears in every namespace as the
    /// module loads), nothing is created and the outcome says so.
    pub async fn create_link(
        &self,
        name: &str,
        kind: LinkKind,
    ) -> Result<AddOutcome, std::io::Error> {
        let (info_kind, data) = match kind {
            LinkKind::Ipip => (
                InfoKind::IpIp,
                InfoData::IpTunnel(vec![InfoIpTunnel::CollectMetadata]),
            ),
            LinkKind::Gre => (
                InfoKind::GreTun,
                InfoData::GreTun(vec![InfoGre::CollectMetadata]),
            ),
        };
        let mut link = LinkMessage::default();
        link.attributes
            .push(LinkAttribute::IfName(name.to_string()));
        link.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(info_kind),
            LinkInfo::Data(data),
        ]));
        let mut message = NetlinkMessage::from(RouteNetlinkMessage::NewLink(link));
        message.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        match self.pipeline(std::iter::once(message)).await.pop() {
            Some(Ok(())) => Ok(AddOutcome::Added),
            Some(Err(e)) if e.raw_os_error() == Some(libc::EEXIST) => {
                Ok(AddOutcome::AlreadyPresent)
            }
            Some(Err(e)) => Err(e),
            None => Err(std::io::Error::other("no answer to the link request")),
        }
    }

    /// Deletes a link; one already gone counts as deleted.
    pub async fn delete_link(&self, interface: &Interface) -> Result<(), std::io::Error> {
        let mut link = LinkMessage::default();
        link.header.index = interface.index;
        if interface.index == 0 {
            link.attributes
                .push(LinkAttribute::IfName(interface.name.clone()));
        }
        let mut message = NetlinkMessage::from(RouteNetlinkMessage::DelLink(link));
        message.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        match self.pipeline(std::iter::once(message)).await.pop() {
            Some(Err(e)) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            Some(result) => result,
            None => Err(std::io::Error::other("no answer to the link request")),
        }
    }

    async fn pipeline(
        &self,
        requests: impl Iterator<Item = NetlinkMessage<RouteNetlinkMessage>>,
    ) -> Vec<Result<(), std::io::Error>> {
        futures::stream::iter(requests)
            .map(|message| {
                let mut handle = self.handle.clone();
                async move {
                    let mut responses = handle
                        .request(message)
                        .map_err(|_| std::io::Error::other("netlink connection closed"))?;
                    while let Some(response) = responses.next().await {
                        if let NetlinkPayload::Error(e) = response.payload
                            && let Some(code) = e.code
                        {
                            return Err(std::io::Error::from_raw_os_error(-code.get()));
                        }
                    }
                    Ok(())
                }
            })
            .buffered(IN_FLIGHT)
            .collect()
            .await
    }
}

/// The message that identifies an address (for deletion, and the base of an add).
fn address_message(index: u32, spec: &AddressSpec) -> AddressMessage {
    let mut message = match spec.address {
        IpAddr::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(a, spec.prefix_len)
            .build(),
        IpAddr::V6(a) => AddressMessageBuilder::<Ipv6Addr>::new()
            .index(index)
            .address(a, spec.prefix_len)
            .build(),
    };
    if let Some(label) = &spec.label {
        message
            .attributes
            .push(AddressAttribute::Label(label.clone()));
    }
    message
}

/// An IPv6 VIP is added without duplicate address detection and deprecated
/// (preferred lifetime 0): it still receives traffic and replies come from
/// it, but the kernel never picks it as the source of new connections.
fn new_address_message(index: u32, spec: &AddressSpec) -> AddressMessage {
    let mut message = address_message(index, spec);
    if spec.address.is_ipv6() {
        message
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        let mut lifetimes = CacheInfo::default();
        lifetimes.ifa_preferred = 0;
        lifetimes.ifa_valid = INFINITY_LIFETIME;
        message
            .attributes
            .push(AddressAttribute::CacheInfo(lifetimes));
    }
    message
}

fn parse_address(message: &AddressMessage) -> Option<Address> {
    let mut address = None;
    let mut local = None;
    let mut label = None;
    let mut deprecated = false;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Label(l) => label = Some(l.clone()),
            AddressAttribute::Flags(f) => deprecated |= f.contains(AddressFlags::Deprecated),
            AddressAttribute::CacheInfo(c) => deprecated |= c.ifa_preferred == 0,
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    // point-to-point links and equal to IFA_LOCAL elsewhere.
    let address = local.or(address)?;
    Some(Address {
        index: message.header.index,
        spec: AddressSpec {
            address,
            prefix_len: message.header.prefix_len,
            label,
        },
        deprecated,
    })
}
