//! The Linux virtual terminals the status screen uses: it draws on tty1
//! (what the vSphere console shows), the log goes to tty2 (Alt+F2), and
//! kernel messages are redirected there too so they do not scribble over
//! the screen. `/dev/vcsaN` reads a VT's text back (the QEMU tests use it
//! through the debug port).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use super::render::paint;

/// The VT the screen is drawn on.
pub const SCREEN_VT: u8 = 1;
/// The VT the log (and kernel messages) go to.
pub const LOG_VT: u8 = 2;
/// `TIOCLINUX` subcode: send kernel messages to another VT.
const TIOCL_SETKMSGREDIRECT: u8 = 11;

pub fn tty_path(vt: u8) -> String {
    format!("/dev/tty{vt}")
}

/// An open VT to draw on.
pub struct Vt {
    tty: File,
}

impl Vt {
    /// Opens `/dev/ttyN` without making it init's controlling terminal.
    pub fn open(vt: u8) -> io::Result<Self> {
        let tty = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(tty_path(vt))?;
        Ok(Self { tty })
    }

    /// Hides the cursor and turns screen blanking off (an admin opening
    /// the console after an hour must see the screen, not black).
    pub fn prepare(&mut self) -> io::Result<()> {
        self.tty
            .write_all(b"\x1b[?25l\x1b[9;0]\x1b[14;0]\x1b[H\x1b[2J")
    }

    /// Columns and rows (80x25 if the VT does not say).
    pub fn size(&self) -> (usize, usize) {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we pass,
        // which lives for the whole call; the fd is open.
        let rc = unsafe { libc::ioctl(self.tty.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        if rc != 0 || ws.ws_col == 0 || ws.ws_row == 0 {
            return (80, 25);
        }
        (usize::from(ws.ws_col), usize::from(ws.ws_row))
    }

    /// Redraws the whole screen in place (no scrolling, no flicker).
    pub fn draw(&mut self, lines: &[String]) -> io::Result<()> {
        self.tty.write_all(frame(lines).as_bytes())
    }

    /// Sends kernel messages to `vt` instead of the foreground VT.
    pub fn redirect_kernel_messages(&self, vt: u8) -> io::Result<()> {
        let mut arg = [TIOCL_SETKMSGREDIRECT, vt];
        // SAFETY: TIOCLINUX reads the subcode and its argument from the
        // two-byte array, which outlives the call; the fd is an open VT.
        let rc = unsafe { libc::ioctl(self.tty.as_raw_fd(), libc::TIOCLINUX, arg.as_mut_ptr()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// The bytes that draw `lines`: home, each line painted and cleared to
/// its end, then the rest of the screen cleared.
pub fn frame(lines: &[String]) -> String {
    let mut out = String::from("\x1b[H");
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        out.push_str(&paint(line));
        out.push_str("\x1b[K");
    }
    out.push_str("\x1b[J");
    out
}

/// The text of `/dev/vcsaN` contents: a 4-byte header (rows, columns,
/// cursor x and y), then a character and an attribute byte per cell.
/// Trailing blanks and empty last lines are dropped.
pub fn decode_vcsa(bytes: &[u8]) -> Vec<String> {
    let (Some(&rows), Some(&cols)) = (bytes.first(), bytes.get(1)) else {
        return Vec::new();
    };
    let (rows, cols) = (usize::from(rows), usize::from(cols));
    let cells = bytes.get(4..).unwrap_or_default();
    let mut lines: Vec<String> = cells
        .chunks(2)
        .map(|cell| cell[0])
        .collect::<Vec<u8>>()
        .chunks(cols.max(1))
        .take(rows)
        // The VT stores code page 437 glyph numbers: ASCII stays ASCII,
        // the rest (line drawing) is shown as '?'.
        .map(|row| {
            row.iter()
                .map(|&c| {
                    if c.is_ascii_graphic() || c == b' ' {
                        char::from(c)
                    } else {
                        '?'
                    }
                })
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// Reads VT `vt`'s text.
pub fn read_screen(vt: u8) -> io::Result<Vec<String>> {
    Ok(decode_vcsa(&std::fs::read(format!("/dev/vcsa{vt}"))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_draws_in_place() {
        let f = frame(&["a".into(), "b MASTER".into()]);
        assert_eq!(f, "\x1b[Ha\x1b[K\r\nb \x1b[1;32mMASTER\x1b[0m\x1b[K\x1b[J");
    }

    #[test]
    fn vcsa_decodes_rows_and_trims() {
        // 2 rows x 4 columns: "ab  " / "    ", attributes 7.
        let mut bytes = vec![2, 4, 0, 0];
        for c in b"ab      " {
            bytes.extend([*c, 7]);
        }
        assert_eq!(decode_vcsa(&bytes), ["ab"]);
        assert!(decode_vcsa(&[]).is_empty());
        assert!(decode_vcsa(&[5]).is_empty());
        // Short data: what is there, no panic.
        assert_eq!(decode_vcsa(&[3, 2, 0, 0, b'x', 7, 0xc4, 7]), ["x?"]);
    }
}
