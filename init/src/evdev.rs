//! The ACPI power button as an input device: the `button` driver reports a
//! press as EV_KEY/KEY_POWER on `/dev/input/eventN` (QEMU's
//! `system_powerdown` and vSphere's "Shut Down" without tools both press it).

use std::fs::File;
use std::io::Read;

/// struct input_event on 64-bit: struct timeval (16 bytes), u16 type,
/// u16 code, i32 value.
pub const EVENT_SIZE: usize = 24;
const EV_KEY: u16 = 0x01;
const KEY_POWER: u16 = 116;
const INPUT_DIR: &str = "/dev/input";

/// Whether one input_event record is a power-key press (value 1) or
/// auto-repeat (value 2); releases (0) are ignored.
pub fn is_power_press(event: &[u8]) -> bool {
    if event.len() < EVENT_SIZE {
        return false;
    }
    let kind = u16::from_ne_bytes([event[16], event[17]]);
    let code = u16::from_ne_bytes([event[18], event[19]]);
    let value = i32::from_ne_bytes([event[20], event[21], event[22], event[23]]);
    kind == EV_KEY && code == KEY_POWER && value >= 1
}

/// Opens every event device; power presses are filtered by content, so
/// which device is the button does not matter.
pub fn open_event_devices() -> Vec<(String, File)> {
    let Ok(dir) = std::fs::read_dir(INPUT_DIR) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("event"))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|n| {
            let path = format!("{INPUT_DIR}/{n}");
            File::open(&path).ok().map(|f| (path, f))
        })
        .collect()
}

/// Reads what is available from a ready device; true if it held a power press.
pub fn read_power_press(dev: &mut File) -> bool {
    let mut buf = [0u8; EVENT_SIZE * 16];
    match dev.read(&mut buf) {
        Ok(n) => buf[..n].chunks_exact(EVENT_SIZE).any(is_power_press),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: u16, code: u16, value: i32) -> Vec<u8> {
        let mut e = vec![0u8; 16];
        e.extend_from_slice(&kind.to_ne_bytes());
        e.extend_from_slice(&code.to_ne_bytes());
        e.extend_from_slice(&value.to_ne_bytes());
        e
    }

    #[test]
    fn power_press_is_recognised_and_others_are_not() {
        assert!(is_power_press(&event(EV_KEY, KEY_POWER, 1)));
        assert!(!is_power_press(&event(EV_KEY, KEY_POWER, 0)), "release");
        assert!(!is_power_press(&event(EV_KEY, 30, 1)), "another key");
        assert!(!is_power_press(&event(0, 0, 0)), "EV_SYN");
        assert!(!is_power_press(&[1, 2, 3]), "short read");
    }
}
