//! Audio backends (libvirt: qemuBuildAudioCommandLine).

use super::*;

impl Builder<'_> {
    pub(super) fn audio(&mut self) {
        for a in &self.def.devices.audios {
            let id = a.id.unwrap_or(1);
            let attr = |n: &str| {
                a.extra
                    .attrs
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.clone())
            };
            let mut j = JsonOpts::new();
            j.s("id", format!("audio{id}"));
            let drv = match a.atype.as_str() {
                "pulseaudio" => "pa",
                "file" => "wav",
                other => other,
            };
            j.s("driver", drv);
            if let Some(t) = attr("timerPeriod").and_then(|v| v.parse().ok()) {
                j.u("timer-period", t);
            }
            match a.atype.as_str() {
                "file" => {
                    j.s_opt("path", attr("path"));
                }
                "pulseaudio" => {
                    j.s_opt("server", attr("serverName"));
                }
                "oss" => {
                    j.tristate("try-mmap", attr("tryMMap").as_deref());
                    j.tristate("exclusive", attr("exclusive").as_deref());
                    if let Some(v) = attr("dspPolicy").and_then(|v| v.parse().ok()) {
                        j.u("dsp-policy", v);
                    }
                }
                "sdl" => {
                    if let Some(d) = attr("driver") {
                        self.extra_env.push(("SDL_AUDIODRIVER".into(), d));
                    }
                }
                _ => {}
            }
            for (elem, key) in [("input", "in"), ("output", "out")] {
                let Some(n) = a.extra.children.iter().find(|c| c.name == elem) else {
                    continue;
                };
                let mut d = JsonOpts::new();
                d.tristate("mixing-engine", n.attr("mixingEngine"));
                d.tristate("fixed-settings", n.attr("fixedSettings"));
                let num = |d: &mut JsonOpts, k: &str, v: Option<&str>| {
                    if let Some(x) = v.and_then(|v| v.parse::<u64>().ok()) {
                        d.u(k, x);
                    }
                };
                num(&mut d, "voices", n.attr("voices"));
                num(&mut d, "buffer-length", n.attr("bufferLength"));
                if let Some(st) = n.child("settings") {
                    num(&mut d, "frequency", st.attr("frequency"));
                    num(&mut d, "channels", st.attr("channels"));
                    d.s_opt("format", st.attr("format"));
                }
                match a.atype.as_str() {
                    "alsa" => {
                        d.s_opt("dev", n.attr("dev"));
                    }
                    "oss" => {
                        d.s_opt("dev", n.attr("dev"));
                        num(&mut d, "buffer-count", n.attr("bufferCount"));
                        d.tristate("try-poll", n.attr("tryPoll"));
                    }
                    "coreaudio" | "sdl" => {
                        num(&mut d, "buffer-count", n.attr("bufferCount"));
                    }
                    "pulseaudio" => {
                        d.s_opt("name", n.attr("name"));
                        d.s_opt("stream-name", n.attr("streamName"));
                        num(&mut d, "latency", n.attr("latency"));
                    }
                    "jack" => {
                        d.s_opt("server-name", n.attr("serverName"));
                        d.s_opt("client-name", n.attr("clientName"));
                        d.s_opt("connect-ports", n.attr("connectPorts"));
                        d.tristate("exact-name", n.attr("exactName"));
                    }
                    _ => {}
                }
                j.v(key, d.into_value());
            }
            self.opt("-audiodev", j.build());
        }
    }
}
