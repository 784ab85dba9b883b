//! The one list of protocols. Everything outside `protocol/` reaches a protocol through what this file
//! generates from that list, and never names a protocol's own types:
//!
//! - [`ProtocolId`] and [`ProtocolSet`]: which protocols there are and which a capture decodes;
//! - [`Exchange`]: a record's payload, whatever its protocol, seen through [`Exchange::payload`];
//! - [`ProtocolSession`]: the session of a connection once its protocol is known, which hands each
//!   exchange it completes on as an [`Exchange`];
//! - [`ProtocolFilters`] and [`ProtocolFilterArgs`]: every protocol's record filters and their options.
//!
//! The list's order is the order protocols are named in (the UI, help, messages), and breaks ties in
//! detection: the first protocol sure that bytes open one of its messages takes the connection, and
//! only when none is sure the first that finds them plausible (`Recognition`).
//!
//! Adding a protocol: one line in the `protocols!` call at the bottom, naming its variant, its folder,
//! its [`Protocol`] type and the payload type a record stores (boxed when the exchange is large, so every
//! record does not pay for the largest protocol).

use std::borrow::{Borrow, BorrowMut};

use super::{
    common::{Flow, Paired, SessionStats},
    json::read::{FieldResult, Json},
    plugin::{
        Chunk, Columns, ExchangeFilter, FilterError, FinishWith, Payload, PayloadJson, Protocol,
        Recognition, Session,
    },
    redact::{Redact, Redaction},
};

/// `each`, which takes exchanges of any protocol, as the [`Finish`](super::plugin::Finish) of a session
/// of one protocol.
fn as_exchanges<X: Into<Exchange>>(
    each: &mut impl FnMut(Paired<Exchange>),
) -> FinishWith<impl FnMut(Paired<X>) + '_> {
    FinishWith(move |p: Paired<X>| each(p.map(Into::into)))
}

macro_rules! protocols {
    ($( $variant:ident => $module:ident :: $protocol:ident ( $payload:ty ) ),+ $(,)?) => {
        /// A protocol watcher decodes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ProtocolId {
            $(
                #[doc = concat!("`", stringify!($module), "`")]
                $variant,
            )+
        }

        impl ProtocolId {
            /// Every protocol, in registry order.
            pub const ALL: &'static [ProtocolId] = &[$( ProtocolId::$variant ),+];

            /// Lower-case name (see [`Protocol::NAME`]).
            pub fn name(self) -> &'static str {
                match self {
                    $( ProtocolId::$variant => <super::$module::$protocol as Protocol>::NAME, )+
                }
            }

            /// Its name in sentences.
            pub fn title(self) -> &'static str {
                match self {
                    $( ProtocolId::$variant => <super::$module::$protocol as Protocol>::TITLE, )+
                }
            }

            /// One line for `--help`.
            pub fn about(self) -> &'static str {
                match self {
                    $( ProtocolId::$variant => <super::$module::$protocol as Protocol>::ABOUT, )+
                }
            }

            /// Headings of its table columns.
            pub fn columns(self) -> Columns {
                match self {
                    $( ProtocolId::$variant => <super::$module::$protocol as Protocol>::COLUMNS, )+
                }
            }

            /// Its filter flags, for messages.
            pub fn filter_flags(self) -> &'static str {
                match self {
                    $( ProtocolId::$variant => <super::$module::$protocol as Protocol>::FILTER_FLAGS, )+
                }
            }

            /// The names of its `--fail-on` conditions.
            pub fn fail_on(self) -> &'static [&'static str] {
                match self {
                    $( ProtocolId::$variant => <super::$module::$protocol as Protocol>::FAIL_ON, )+
                }
            }

            /// Whether `data` (the start of a syscall's bytes) opens one of its messages.
            pub fn recognise(self, flow: Flow, data: &[u8]) -> Recognition {
                match self {
                    $( ProtocolId::$variant => <super::$module::$protocol as Protocol>::recognise(flow, data), )+
                }
            }

            /// A new session of this protocol.
            pub fn session(self, keep_bytes: usize, in_sync: bool) -> ProtocolSession {
                match self {
                    $( ProtocolId::$variant => ProtocolSession::$variant(
                        Session::new(keep_bytes, in_sync),
                    ), )+
                }
            }

            /// Reads this protocol's payload from JSON.
            pub fn read_json(self, value: Json<'_>) -> FieldResult<Exchange> {
                match self {
                    $( ProtocolId::$variant =>
                        <<super::$module::$protocol as Protocol>::Exchange as PayloadJson>::read_json(value)
                            .map(Exchange::from), )+
                }
            }
        }

        /// A record's payload: one decoded exchange of any protocol.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Exchange {
            $(
                #[doc = concat!("A `", stringify!($module), "` exchange.")]
                $variant($payload),
            )+
        }

        $(
            impl From<<super::$module::$protocol as Protocol>::Exchange> for Exchange {
                fn from(x: <super::$module::$protocol as Protocol>::Exchange) -> Self {
                    Exchange::$variant(x.into())
                }
            }
        )+

        impl Exchange {
            /// Its protocol.
            pub fn protocol(&self) -> ProtocolId {
                match self {
                    $( Exchange::$variant(_) => ProtocolId::$variant, )+
                }
            }

            /// Heap bytes it holds: its payload's, and the payload itself when it is boxed.
            pub fn heap_bytes(&self) -> usize {
                let payload = self.payload();
                let boxed = match self {
                    $( Exchange::$variant(_) => {
                        size_of::<$payload>() < size_of::<<super::$module::$protocol as Protocol>::Exchange>()
                    } )+
                };
                payload.heap_bytes() + if boxed { size_of_val(payload) } else { 0 }
            }

            /// What the stages after decoding ask of it.
            pub fn payload(&self) -> &dyn Payload {
                match self {
                    $( Exchange::$variant(x) => {
                        let x: &<super::$module::$protocol as Protocol>::Exchange = x.borrow();
                        x
                    } )+
                }
            }

            /// Masks its secrets as `policy` says (see `protocol/redact.rs`); returns whether it had
            /// any. Called where exchanges are made: by shards, and when a file is read back.
            pub fn redact(&mut self, policy: &Redaction) -> bool {
                match self {
                    $( Exchange::$variant(x) => {
                        let x: &mut <super::$module::$protocol as Protocol>::Exchange = x.borrow_mut();
                        Redact::redact(x, policy)
                    } )+
                }
            }
        }

        /// The session of a connection whose protocol is known.
        #[derive(Debug)]
        #[allow(
            clippy::large_enum_variant,
            reason = "one per connection, touched on every event: a box would add a pointer chase to the hot path"
        )]
        pub enum ProtocolSession {
            $(
                #[doc = concat!("A `", stringify!($module), "` connection.")]
                $variant(<super::$module::$protocol as Protocol>::Session),
            )+
        }

        impl ProtocolSession {
            /// Feeds one chunk of bytes (see [`Session::on_data`]); `each` takes every exchange
            /// finished, as an [`Exchange`], as it is finished.
            pub fn on_data(&mut self, chunk: Chunk<'_>, each: &mut impl FnMut(Paired<Exchange>)) {
                match self {
                    $( ProtocolSession::$variant(s) => s.on_data(chunk, &mut as_exchanges(each)), )+
                }
            }

            /// Accounts for `len` bytes that were not captured.
            pub fn on_gap(&mut self, flow: Flow, len: u64, each: &mut impl FnMut(Paired<Exchange>)) {
                match self {
                    $( ProtocolSession::$variant(s) => s.on_gap(flow, len, &mut as_exchanges(each)), )+
                }
            }

            /// The connection closed.
            pub fn on_close(&mut self, each: &mut impl FnMut(Paired<Exchange>)) {
                match self {
                    $( ProtocolSession::$variant(s) => s.on_close(&mut as_exchanges(each)), )+
                }
            }

            /// Counters so far.
            pub fn stats(&self) -> SessionStats {
                match self {
                    $( ProtocolSession::$variant(s) => s.stats(), )+
                }
            }
        }

        /// Every protocol's record filters.
        #[derive(Clone, Debug, Default)]
        pub struct ProtocolFilters {
            $(
                #[doc = concat!("`", stringify!($module), "` filters.")]
                pub $module: <super::$module::$protocol as Protocol>::Filter,
            )+
        }

        impl ProtocolFilters {
            /// Whether `exchange` passes its protocol's filters.
            pub fn matches(&self, exchange: &Exchange) -> bool {
                match exchange {
                    $( Exchange::$variant(x) => self.$module.matches(x.borrow()), )+
                }
            }

            /// The protocols whose filters are set.
            pub fn set(&self) -> ProtocolSet {
                let mut set = ProtocolSet::NONE;
                $( if self.$module.is_set() {
                    set.insert(ProtocolId::$variant);
                } )+
                set
            }
        }

        /// Every protocol's filter options, as clap parses them.
        #[derive(Debug, clap::Args)]
        pub struct ProtocolFilterArgs {
            $(
                #[doc = concat!("`", stringify!($module), "` filter options.")]
                #[command(flatten)]
                pub $module: <
                    <super::$module::$protocol as Protocol>::Filter
                        as ExchangeFilter<<super::$module::$protocol as Protocol>::Exchange>
                >::Args,
            )+
        }

        impl ProtocolFilterArgs {
            /// Validates every protocol's options.
            pub fn filters(&self) -> Result<ProtocolFilters, FilterError> {
                Ok(ProtocolFilters {
                    $( $module: ExchangeFilter::from_args(&self.$module)?, )+
                })
            }
        }
    };
}

protocols! {
    Redis => redis::Redis(super::redis::RedisExchange),
    Http => http::Http(Box<super::http::HttpExchange>),
    Mysql => mysql::Mysql(Box<super::mysql::MysqlExchange>),
}

impl ProtocolId {
    /// The protocol named exactly `name` (as in JSON and on the command line).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.name() == name)
    }

    fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// A set of protocols: which a capture decodes, or which a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolSet(u32);

impl ProtocolSet {
    /// No protocol.
    pub const NONE: Self = Self(0);

    /// Every protocol.
    pub fn all() -> Self {
        ProtocolId::ALL.iter().copied().collect()
    }

    /// Only `id`.
    pub fn only(id: ProtocolId) -> Self {
        Self(id.bit())
    }

    /// Adds `id`.
    pub fn insert(&mut self, id: ProtocolId) {
        self.0 |= id.bit();
    }

    /// Whether `id` is in the set.
    pub fn contains(self, id: ProtocolId) -> bool {
        self.0 & id.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The protocols in the set, in registry order.
    pub fn iter(self) -> impl Iterator<Item = ProtocolId> {
        ProtocolId::ALL
            .iter()
            .copied()
            .filter(move |p| self.contains(*p))
    }
}

impl FromIterator<ProtocolId> for ProtocolSet {
    fn from_iter<I: IntoIterator<Item = ProtocolId>>(ids: I) -> Self {
        let mut set = Self::NONE;
        for id in ids {
            set.insert(id);
        }
        set
    }
}

impl clap::ValueEnum for ProtocolId {
    fn value_variants<'a>() -> &'a [Self] {
        Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.about()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for id in ProtocolId::ALL {
            assert_eq!(ProtocolId::from_name(id.name()), Some(*id));
            assert_eq!(ProtocolId::from_name(&id.name().to_ascii_uppercase()), None);
        }
        assert_eq!(ProtocolId::from_name("gopher"), None);
        let all = ProtocolSet::all();
        assert_eq!(all.iter().count(), ProtocolId::ALL.len());
        let only = ProtocolSet::only(ProtocolId::Redis);
        assert!(only.contains(ProtocolId::Redis) && !only.contains(ProtocolId::Http));
        assert!(ProtocolSet::NONE.is_empty());
    }
}
