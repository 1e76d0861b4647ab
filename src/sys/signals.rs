//! Signals as an event source: the handler only writes to a pipe that mio
//! polls, so all real work happens in the event loop.

use std::io;

use mio::{Interest, Registry, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals as SignalPipe;

/// What a delivered signal asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP.
    Reload,
    /// SIGTERM or SIGINT.
    Stop,
}

pub struct Signals {
    pipe: SignalPipe,
}

impl Signals {
    /// Installs the handlers. From here on SIGTERM and SIGINT no longer kill
    /// the process; they are reported through [`Signals::pending`].
    pub fn install() -> io::Result<Signals> {
        Ok(Signals {
            pipe: SignalPipe::new([SIGHUP, SIGTERM, SIGINT])?,
        })
    }

    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.pipe, token, Interest::READABLE)
    }

    /// The signals delivered since the last call.
    pub fn pending(&mut self) -> Vec<Signal> {
        self.pipe
            .pending()
            .map(|number| {
                if number == SIGHUP {
                    Signal::Reload
                } else {
                    Signal::Stop
                }
            })
            .collect()
    }
}
