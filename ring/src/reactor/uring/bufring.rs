//! A provided-buffer ring (IORING_REGISTER_PBUF_RING): `entries` buffers
//! of `size` bytes in one anonymous mapping, and the ring of
//! `io_uring_buf` entries the kernel takes them from. The kernel only
//! reads the ring (entries up to the published tail); we write an entry
//! at the tail and publish the new tail with a Release store, exactly as
//! REPORT §6 describes.

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::Submitter;

use crate::reactor::sys::Mmap;

pub(crate) struct BufRing {
    ring: Mmap,
    data: Mmap,
    entries: u16,
    size: usize,
    /// Our tail (the kernel's view is the last published value).
    tail: u16,
    pub(crate) bgid: u16,
    registered: bool,
}

impl BufRing {
    /// Maps the ring and its buffers and fills every entry.
    pub(crate) fn new(entries: u16, size: usize, bgid: u16) -> io::Result<BufRing> {
        assert!(entries.is_power_of_two());
        let ring = Mmap::new(entries as usize * std::mem::size_of::<BufRingEntry>())?;
        let data = Mmap::new(entries as usize * size)?;
        let mut r = BufRing {
            ring,
            data,
            entries,
            size,
            tail: 0,
            bgid,
            registered: false,
        };
        for bid in 0..entries {
            r.push(bid);
        }
        Ok(r)
    }

    /// Registers the ring under `bgid` and publishes its buffers.
    pub(crate) fn register(&mut self, sub: &Submitter<'_>) -> io::Result<()> {
        // SAFETY: the ring mapping (entries * 16 bytes, page aligned) lives
        // as long as self, and self unregisters before it is dropped (or
        // leaks the mappings, see `leak`).
        unsafe {
            sub.register_buf_ring_with_flags(
                self.ring.as_ptr() as u64,
                self.entries,
                self.bgid,
                0,
            )?;
        }
        self.registered = true;
        self.publish();
        Ok(())
    }

    pub(crate) fn unregister(&mut self, sub: &Submitter<'_>) {
        if self.registered {
            let _ = sub.unregister_buf_ring(self.bgid);
            self.registered = false;
        }
    }

    /// Writes buffer `bid` at the tail (not yet visible to the kernel).
    fn push(&mut self, bid: u16) {
        let slot = (self.tail & (self.entries - 1)) as usize;
        // SAFETY: slot < entries, so the entry lies inside the ring
        // mapping; the kernel does not read entries past the published
        // tail, so nothing reads this one concurrently; bid < entries, so
        // the address is inside the data mapping.
        unsafe {
            let e = &mut *(self.ring.as_ptr() as *mut BufRingEntry).add(slot);
            e.set_addr(self.data.as_ptr().add(bid as usize * self.size) as u64);
            e.set_len(self.size as u32);
            e.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field lies inside the ring mapping (it overlays
        // entry 0's reserved field), and a u16 there is suitably aligned.
        unsafe {
            let t =
                BufRingEntry::tail(self.ring.as_ptr() as *const BufRingEntry) as *const AtomicU16;
            (*t).store(self.tail, Ordering::Release);
        }
    }

    /// Gives buffer `bid` back to the kernel.
    pub(crate) fn recycle(&mut self, bid: u16) {
        self.push(bid);
        self.publish();
    }

    /// The first `len` bytes of buffer `bid`.
    ///
    /// # Safety
    /// Only for a buffer a completion handed to us and that we have not
    /// recycled since: the kernel neither reads nor writes it meanwhile.
    pub(crate) unsafe fn buf(&self, bid: u16, len: usize) -> &[u8] {
        let bid = (bid as usize) % self.entries as usize;
        let len = len.min(self.size);
        std::slice::from_raw_parts(self.data.as_ptr().add(bid * self.size), len)
    }

    /// Keeps the mappings forever (the kernel may still own buffers).
    pub(crate) fn leak(&mut self) {
        self.ring.leak();
        self.data.leak();
    }
}
