//! An authoritative DNS server on loopback for tests (`hickory-server`, one in-memory
//! root zone): tests create and delete the TXT/CNAME/A records a custom domain needs,
//! and point Souk's checks (`DomainsConfig::nameserver`) and Pebble (`-dnsserver`) at it.

use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{A, CNAME, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct TestDns {
    pub addr: SocketAddr,
    zone: Arc<InMemoryZoneHandler<TokioRuntimeProvider>>,
    serial: AtomicU32,
    _server: Server<Catalog>,
}

fn name(s: &str) -> Name {
    Name::from_ascii(format!("{}.", s.trim_end_matches('.'))).expect("DNS name")
}

impl TestDns {
    /// Starts the server on a random UDP port of 127.0.0.1.
    pub async fn start() -> TestDns {
        let zone = Arc::new(InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
            Name::root(),
            ZoneType::Primary,
            AxfrPolicy::Deny,
        ));
        let soa = SOA::new(name("ns.test"), name("hostmaster.test"), 1, 60, 60, 600, 0);
        zone.upsert(Record::from_rdata(Name::root(), 0, RData::SOA(soa)), 1)
            .await;
        let mut catalog = Catalog::new();
        catalog.upsert(
            LowerName::new(&Name::root()),
            vec![zone.clone() as Arc<dyn ZoneHandler>],
        );
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind DNS socket");
        let addr = socket.local_addr().expect("DNS addr");
        let mut server = Server::new(catalog);
        server.register_socket(socket);
        TestDns {
            addr,
            zone,
            serial: AtomicU32::new(2),
            _server: server,
        }
    }

    async fn upsert(&self, owner: &str, data: RData) {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        self.zone
            .upsert(Record::from_rdata(name(owner), 0, data), serial)
            .await;
    }

    pub async fn set_txt(&self, owner: &str, value: &str) {
        self.remove(owner, RecordType::TXT).await;
        self.upsert(owner, RData::TXT(TXT::new(vec![value.to_string()])))
            .await;
    }

    pub async fn set_a(&self, owner: &str, ip: Ipv4Addr) {
        self.upsert(owner, RData::A(A(ip))).await;
    }

    pub async fn set_cname(&self, owner: &str, target: &str) {
        self.upsert(owner, RData::CNAME(CNAME(name(target)))).await;
    }

    /// Deletes every record of `rtype` at `owner`.
    pub async fn remove(&self, owner: &str, rtype: RecordType) {
        let key = RrKey::new(LowerName::new(&name(owner)), rtype);
        self.zone.records_mut().await.remove(&key);
    }
}
