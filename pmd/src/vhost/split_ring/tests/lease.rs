//! One copy between guests: a leased frame keeps its tail in the sending
//! guest until `release`, is written to another guest byte for byte, and
//! the headers written are the private copy the switch decided on.

use super::*;

/// Guest A offers `chain` (head 0); returns the burst and whether chains are held.
fn lease(a: &mut Fixture, r: &mut SplitRing, chain: &[(u16, Desc)]) -> (Batch, bool) {
    let q = mock(&a.mem);
    offer(&q, chain, &[chain[0].0]);
    let mut out = Batch::new();
    let (_, notify) = r.dequeue_leasing(&a.mem, &mut a.cache, &mut out, &a.stats);
    let held = r.leased() > 0;
    assert!(!(held && notify), "a held burst is not published yet");
    (out, held)
}

/// The frame guest B's buffers hold after `enqueue` (B's buffers: `rx_buffers`).
fn received(b: &Fixture, n_used: u64) -> Vec<u8> {
    let q = mock(&b.mem);
    let mut got = Vec::new();
    for i in 0..n_used {
        let (id, len) = used_elem(b, &q, i);
        let mut part = vec![0u8; len as usize];
        b.gm()
            .read_slice(&mut part, GuestAddress(BUFS + 0x1000 * id as u64))
            .unwrap();
        got.extend(part);
    }
    got.split_off(12)
}

#[test]
fn a_long_frame_keeps_its_tail_in_the_guest_until_release() {
    let (mut a, b) = (Fixture::new(), Fixture::new());
    let (ma, mb) = (a.mem.clone(), b.mem.clone());
    let (qa, qb) = (mock(&ma), mock(&mb));
    let mut ra = a.ring(&qa, feats());
    let mut rb = b.ring(&qb, feats());
    let fr = frame(1514, 7);
    let chain = tx_chain(&a, 0, BUFS, &fr);
    let (mut out, held) = lease(&mut a, &mut ra, &chain);
    assert!(held);
    let m = out.get(0);
    assert_eq!((m.head_len(), m.len()), (LEASE_HEAD, 1514));
    assert_eq!(m.data(), &fr[..LEASE_HEAD]);
    assert_eq!(qa.used_idx().load(), 0, "the chain is still ours");
    assert_eq!(ra.leased(), 1);

    rx_buffers(&qb, 4, 2048, VRING_DESC_F_WRITE);
    assert_eq!(rb.enqueue(&b.mem, &mut a.cache, &mut out, &b.stats).0, 1);
    assert_eq!(received(&b, 1), fr, "one copy, byte for byte");

    ra.release();
    assert_eq!(qa.used_idx().load(), 1, "returned after the copy");
    assert_eq!(used_elem(&a, &qa, 0), (0, 0));
    assert_eq!(ra.leased(), 0);
}

#[test]
fn short_frames_are_copied_whole_and_returned_at_once() {
    let mut a = Fixture::new();
    let ma = a.mem.clone();
    let qa = mock(&ma);
    let mut ra = a.ring(&qa, feats());
    for (i, len) in [60usize, LEASE_HEAD, LEASE_MIN_FRAME - 1]
        .into_iter()
        .enumerate()
    {
        let fr = frame(len, i as u8);
        let (mut out, held) = {
            let c = tx_chain(&a, 0, BUFS, &fr);
            lease(&mut a, &mut ra, &c)
        };
        assert!(!held, "{len} bytes: nothing held");
        assert_eq!(out.get(0).data(), &fr[..]);
        assert!(out.get(0).tail().is_none());
        assert_eq!(qa.used_idx().load(), i as u16 + 1);
        a.cache.free_batch(&mut out);
    }
}

/// The guest rewrites its buffer after we took the frame: what guest B gets
/// starts with the headers as they were when the switch read them; only the
/// tail (the guest's own payload) is the new content.
#[test]
fn the_headers_written_are_the_ones_the_switch_decided_on() {
    let (mut a, b) = (Fixture::new(), Fixture::new());
    let (ma, mb) = (a.mem.clone(), b.mem.clone());
    let (qa, qb) = (mock(&ma), mock(&mb));
    let mut ra = a.ring(&qa, feats());
    let mut rb = b.ring(&qb, feats());
    let old = frame(1514, 1);
    let (mut out, _) = {
        let c = tx_chain(&a, 0, BUFS, &old);
        lease(&mut a, &mut ra, &c)
    };
    let new = frame(1514, 2);
    a.gm().write_slice(&new, GuestAddress(BUFS + 12)).unwrap();
    rx_buffers(&qb, 1, 2048, VRING_DESC_F_WRITE);
    rb.enqueue(&b.mem, &mut a.cache, &mut out, &b.stats);
    let got = received(&b, 1);
    assert_eq!(&got[..LEASE_HEAD], &old[..LEASE_HEAD]);
    assert_eq!(&got[LEASE_HEAD..], &new[LEASE_HEAD..]);
    ra.release();
}

/// A tail in two ranges, written into small mergeable buffers, so the copy
/// crosses every boundary on both sides.
#[test]
fn a_tail_in_two_ranges_crosses_into_merged_buffers_intact() {
    let (mut a, b) = (Fixture::new(), Fixture::new());
    let (ma, mb) = (a.mem.clone(), b.mem.clone());
    let (qa, qb) = (mock(&ma), mock(&mb));
    let mut ra = a.ring(&qa, feats());
    let mut rb = b.ring(&qb, feats());
    let fr = frame(1514, 3);
    a.gm().write_slice(&[0u8; 12], GuestAddress(BUFS)).unwrap();
    a.gm()
        .write_slice(&fr[..100], GuestAddress(BUFS + 12))
        .unwrap();
    a.gm()
        .write_slice(&fr[100..800], GuestAddress(BUFS + 0x1000))
        .unwrap();
    a.gm()
        .write_slice(&fr[800..], GuestAddress(BUFS + 0x2000))
        .unwrap();
    let chain = [
        (0, desc(BUFS, 112, VRING_DESC_F_NEXT, 1)),
        (1, desc(BUFS + 0x1000, 700, VRING_DESC_F_NEXT, 2)),
        (2, desc(BUFS + 0x2000, 714, 0, 0)),
    ];
    let (mut out, held) = lease(&mut a, &mut ra, &chain);
    assert!(held);
    let t = out.get(0).tail().unwrap();
    let lens: Vec<usize> = t.ranges().iter().map(|r| r.len).collect();
    assert_eq!(lens, [700 - (LEASE_HEAD - 100), 714]);
    rx_buffers(&qb, 8, 500, VRING_DESC_F_WRITE);
    assert_eq!(rb.enqueue(&b.mem, &mut a.cache, &mut out, &b.stats).0, 1);
    let n = qb.used_idx().load();
    assert_eq!(received(&b, n as u64), fr);
    assert_eq!(n, 4, "12 + 1514 bytes in 500-byte buffers");
    ra.release();
}

/// More pieces than a tail has ranges: copied whole, not held.
#[test]
fn a_chain_of_more_pieces_than_a_tail_holds_is_copied_whole() {
    let mut a = Fixture::new();
    let ma = a.mem.clone();
    let qa = mock(&ma);
    let mut ra = a.ring(&qa, feats());
    // Small pieces, so the whole frame still fits a buffer.
    let (pieces, piece) = (MAX_TAIL_RANGES + LEASE_HEAD / 25 + 8, 25);
    let fr = frame(piece * pieces, 4);
    let table = BUFS + 0x8000;
    a.gm().write_slice(&[0u8; 12], GuestAddress(BUFS)).unwrap();
    put_desc(a.gm(), table, desc(BUFS, 12, VRING_DESC_F_NEXT, 1));
    for i in 0..pieces {
        let at = BUFS + 0x1000 + 64 * i as u64;
        a.gm()
            .write_slice(&fr[piece * i..piece * (i + 1)], GuestAddress(at))
            .unwrap();
        let flags = if i + 1 < pieces { VRING_DESC_F_NEXT } else { 0 };
        put_desc(
            a.gm(),
            table + 16 * (i as u64 + 1),
            desc(at, piece as u32, flags, i as u16 + 2),
        );
    }
    let chain = [(
        0u16,
        desc(table, 16 * (pieces as u32 + 1), VRING_DESC_F_INDIRECT, 0),
    )];
    let (mut out, held) = lease(&mut a, &mut ra, &chain);
    assert!(!held);
    assert!(out.get(0).tail().is_none());
    assert_eq!(out.get(0).data(), &fr[..]);
    assert_eq!(qa.used_idx().load(), 1);
    a.cache.free_batch(&mut out);
}

/// A 9000-byte frame (MTU 9000) in one copy; `take_tail_in` (the path to
/// drivers that want the whole frame) gives the same bytes.
#[test]
fn a_jumbo_frame_goes_across_in_one_copy_or_whole() {
    let (mut a, b) = (Fixture::with_data_room(9216), Fixture::new());
    let (ma, mb) = (a.mem.clone(), b.mem.clone());
    let (qa, qb) = (mock(&ma), mock(&mb));
    let mut ra = a.ring(&qa, feats());
    let mut rb = b.ring(&qb, feats());
    let fr = frame(9000, 5);
    let (mut out, held) = {
        let c = tx_chain(&a, 0, BUFS, &fr);
        lease(&mut a, &mut ra, &c)
    };
    assert!(held);
    let mut whole = a.cache.alloc().unwrap();
    whole.fill(out.get(0).data());
    // SAFETY: `whole` is freed below, before the lease is released.
    unsafe { whole.set_tail(out.get(0).tail()) };
    assert!(whole.take_tail_in());
    assert_eq!(whole.data(), &fr[..]);
    a.cache.free(whole);
    rx_buffers(&qb, 8, 2048, VRING_DESC_F_WRITE);
    assert_eq!(rb.enqueue(&b.mem, &mut a.cache, &mut out, &b.stats).0, 1);
    assert_eq!(received(&b, 5), fr);
    ra.release();
    assert_eq!(qa.used_idx().load(), 1);
}

/// A guest rewrites its TX buffer in a loop (two frames with different
/// destination MACs) while we lease, decide, write and release: every frame
/// guest B gets starts with exactly the head the switch read.
#[test]
fn a_guest_rewriting_its_buffer_never_changes_the_headers_decided_on() {
    let (mut a, b) = (Fixture::new(), Fixture::new());
    let (ma, mb) = (a.mem.clone(), b.mem.clone());
    let (qa, qb) = (mock(&ma), mock(&mb));
    let mut ra = a.ring(&qa, feats());
    let mut rb = b.ring(&qb, feats());
    let (x, y) = (frame(1514, 10), frame(1514, 200));
    let chain = tx_chain(&a, 0, BUFS, &x);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (mem, stop, x, y) = (a.mem.clone(), stop.clone(), x.clone(), y.clone());
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let f = if flips.is_multiple_of(2) { &y } else { &x };
                mem.mappings()
                    .write_slice(f, GuestAddress(BUFS + 12))
                    .unwrap();
                flips += 1;
            }
            flips
        })
    };
    let mut mixed_tails = 0;
    for _ in 0..2000 {
        let (mut out, held) = lease(&mut a, &mut ra, &chain);
        assert!(held);
        let decided = out.get(0).data().to_vec();
        rx_buffers(&qb, 1, 2048, VRING_DESC_F_WRITE);
        let before = qb.used_idx().load();
        assert_eq!(rb.enqueue(&b.mem, &mut a.cache, &mut out, &b.stats).0, 1);
        let (id, len) = used_elem(&b, &qb, before as u64 % QSIZE as u64);
        let mut got = vec![0u8; len as usize];
        b.gm()
            .read_slice(&mut got, GuestAddress(BUFS + 0x1000 * id as u64))
            .unwrap();
        assert_eq!(
            &got[12..12 + LEASE_HEAD],
            &decided[..],
            "headers as decided"
        );
        if got[12 + LEASE_HEAD..] != x[LEASE_HEAD..] && got[12 + LEASE_HEAD..] != y[LEASE_HEAD..] {
            mixed_tails += 1;
        }
        ra.release();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);
    // A payload torn by its own guest is that guest's business (as with two
    // copies); only the headers are the switch's.
    let _ = mixed_tails;
}
