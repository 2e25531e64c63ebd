//! The monitor of one running guest; started by `vsh start` and by the library's
//! `Domain::create`, never by hand. See `domdriver::driver::monitor`.

fn main() {
    std::process::exit(domdriver::driver::monitor::server::main());
}
