/*
 * mm/mcentral.pml - Promela model of the span-free protocol of
 * mm/mcentral.c (mcentral_free, mcentral_route_pending, reclaim_locked,
 * place_swept, mcentral_cache_span, mcentral_uncache_span), mm/mspan.c
 * (mspan_sweep, the liveness check) and mm/mcache.c (owner frees into its
 * allocation span or owned sets, the full set and its way back,
 * take_notices, local sweeps, giving a span back, taking it again).
 * Checked by tools/check-model.sh (spin, make test).
 *
 * One span of NOBJ objects, NCPU CPUs. A CPU is one process doing, in
 * any order and up to STEPS times: take the span from the mcentral (it
 * becomes the owner), allocate a free slot (owner, not while the span is
 * in its full set), sweep it and perhaps put it in its full set (owner),
 * give it back to the mcentral (owner), reclaim the mcentral's pending
 * stack, empty its own notice stack, free a live object (as the owner:
 * its alloc_bits bit cleared, plain, so the slot may be handed out again
 * at once, and a span in the full set moves back; otherwise the
 * remote protocol: its CPU's hazard set, liveness check, fetch_or,
 * pending flag, route to the owner's notice stack or the mcentral's
 * pending stack by a possibly stale read of the owner, hazard cleared),
 * or free again an object whose free has completed (a double free in
 * program order). Every
 * statement is one atomic step of the C code (a load, a store, an atomic
 * read-modify-write, or a section under the mcentral lock); the memory
 * model is sequentially consistent (the C code uses seq_cst for every
 * access of the remote protocol whose order matters, but for the hazard
 * stores, whose order the fetch_or after the first and the sweep's
 * acquire load give: mm/mcentral.c says why). Each stack holds
 * at most this one span, so it is a flag (the stacks' own CAS loops are
 * not modelled).
 *
 * Checked: an object is never handed out twice (alloc asserts it is not
 * live to the program); a valid free is always accepted and a double free
 * always refused; the span record is never given back while a remote
 * free is between its first and last touch, nor while it is pending; it
 * is on at most one stack, and on one only while pending; when every CPU
 * is done no remote free is stranded (each is in a span that is pending,
 * or that its owner scans, or listed partial); and no free is lost: a
 * drain (give back, empty every notice and pending stack, sweep every
 * listed span) leaves every freed object free in the bitmaps, and gives
 * the span back once nothing is live.
 */
#ifndef NCPU
#define NCPU 2
#endif
#define NOBJ 2   /* the object choices below spell out 0 and 1 */
#ifndef STEPS
#define STEPS 5
#endif
#define MAXCPU 3   /* the notice stacks below spell out 0..2 */

/* Span state (mspan). */
bit alloc_bits[NOBJ];         /* handed out; the owner's free clears it */
bit remote_bits[NOBJ];        /* remote frees (one word: swept at once) */
byte alloc_count;
bit remote_pending;           /* routed to a stack, or on one */
bit on_central;               /* on the mcentral's pending stack */
bit on_notice[MAXCPU];        /* on CPU k's notice stack */
bit hazard[MAXCPU];           /* CPU k's hazard points at the span */
short owner = 0;              /* CPU 0 got it fresh from the mheap */
bit ofull;                    /* in its owner's full set (never scanned) */
bit listed;                   /* on an mcentral list (partial or full) */
bit released;                 /* given back to the mheap */
bit lock;                     /* the mcentral lock */

/* The program's view of each object (ghost): 0 not handed out (or its
 * free completed), 1 live, 2 a free of it is in progress. */
byte prog[NOBJ];
bit ever[NOBJ];               /* handed out at least once */
byte dbl[NOBJ];               /* double frees of it being tried:
                                 meanwhile the slot is not handed out again
                                 (that would make it a valid free of the
                                 new object) nor the span given back (its
                                 record may be reused: the same race) */

/* Object k was handed out and its free has completed. */
#define DONE(k)  (prog[k] == 0 && ever[k])
#define STACKED  (on_central + on_notice[0] + on_notice[1] + on_notice[2])
#define HAZARD   (hazard[0] || hazard[1] || hazard[2])

#define LOCK()   atomic { lock == 0 -> lock = 1 }
#define UNLOCK() lock = 0

/* mspan_sweep, one word: snapshot the remote frees, clear their slots in
 * alloc_bits, and only then clear the snapshot's bits in remote_bits
 * (fetch_and: a bit set after the snapshot stays for the next sweep). A
 * freer that finds its bit gone therefore finds the slot free. */
inline sweep() {
	d_step {
		i = 0;
		do
		:: i < NOBJ -> rsnap[i] = remote_bits[i]; i++
		:: else -> break
		od
	};
	d_step {
		i = 0;
		do
		:: i < NOBJ ->
			if
			:: rsnap[i] -> alloc_bits[i] = 0
			:: else -> skip
			fi;
			i++
		:: else -> break
		od
	};
	d_step {
		i = 0;
		do
		:: i < NOBJ -> if :: rsnap[i] -> remote_bits[i] = 0 :: else -> skip fi; i++
		:: else -> break
		od;
		alloc_count = 0;
		i = 0;
		do
		:: i < NOBJ -> alloc_count = alloc_count + alloc_bits[i]; i++
		:: else -> break
		od
	}
}

/* place_swept (under the lock, span owned by nobody). */
inline place() {
	assert(owner < 0 && !released);
	atomic {   /* the checks are separate loads in C; see the monitor */
		if
		:: alloc_count == 0 && remote_pending == 0 && !HAZARD &&
		   dbl[0] == 0 && dbl[1] == 0 ->   /* ghost: see dbl */
			released = 1; listed = 0
		:: else -> listed = 1
		fi
	}
}

/* mcentral_route_pending: read the owner, then push where it says (the owner may
 * change between the two). */
inline route() {
	r = owner;
	if
	:: r >= 0 -> on_notice[r] = 1
	:: else -> on_central = 1
	fi
}

/* reclaim_locked (under the lock): pop the stack; if nobody owns the
 * span, clear the flag, sweep and place it; else push it on its owner's
 * notice stack (the owner cannot change under the lock). */
inline reclaim() {
	if
	:: on_central ->
		on_central = 0;
		if
		:: owner < 0 -> remote_pending = 0; listed = 0; sweep(); place()
		:: else -> on_notice[owner] = 1
		fi
	:: else -> skip
	fi
}

/* The program's free of o took effect (the step that records it). */
inline freed() {
	if
	:: prog[o] == 2 -> prog[o] = 0
	:: else -> skip
	fi
}

/* mcentral_free by CPU me of object o; accepted is set to the verdict. */
inline span_free() {
	if
	:: owner == me ->
		/* mspan_free_owned / mcache_free: plain loads and a store
		 * that clears the slot's alloc bit (free at once); a span in
		 * the full set goes back to the partial set. */
		if
		:: alloc_bits[o] && !remote_bits[o] ->
			alloc_bits[o] = 0; accepted = 1; freed(); ofull = 0
		:: else -> accepted = 0
		fi
	:: else ->
		assert(!released);
		hazard[me] = 1;
		assert(!released);
		/* the liveness check, one load per bitmap: the remote word
		 * first, alloc_bits last (see sweep) */
		if
		:: remote_bits[o] -> accepted = 0
		:: else ->
			if
			:: !alloc_bits[o] -> accepted = 0
			:: else ->
				/* fetch_or: refused if the bit was set meanwhile */
				atomic {
					if
					:: remote_bits[o] -> accepted = 0
					:: else -> remote_bits[o] = 1; accepted = 1; freed()
					fi
				};
				assert(!released);
				if
				:: accepted && remote_pending == 0 ->
					atomic {
						if
						:: remote_pending == 0 -> remote_pending = 1; push = 1
						:: else -> push = 0
						fi
					};
					if
					:: push -> route()
					:: else -> skip
					fi;
					assert(!released)
				:: else -> push = 0
				fi
			fi
		fi;
		hazard[me] = 0
	fi
}

proctype cpu(short me)
{
	short r;
	byte i, o, n = 0;
	bit accepted, push;
	bit rsnap[NOBJ];

	do
	:: n < STEPS -> n++;
		if
		/* mcentral_cache_span: reclaim, then take a listed span with room */
		:: owner < 0 && !released ->
			LOCK();
			reclaim();
			if
			:: listed && alloc_count < NOBJ ->
				listed = 0; sweep(); owner = me; ofull = 0
			:: else -> skip
			fi;
			UNLOCK()
		/* the owner allocates a free slot (its allocation span) */
		:: owner == me && !ofull ->
			/* one step: only the owner writes alloc_bits, and its
			 * store is what other CPUs can see */
			atomic {
				o = 0;
				do
				:: o < NOBJ && alloc_bits[o] -> o++
				:: o < NOBJ && !alloc_bits[o] && dbl[o] == 0 -> break
				:: o < NOBJ && !alloc_bits[o] && dbl[o] > 0 -> o = NOBJ; break
				:: o == NOBJ -> break
				od;
				if
				:: o < NOBJ ->
					assert(prog[o] == 0);   /* never handed out twice */
					alloc_bits[o] = 1; prog[o] = 1; ever[o] = 1
				:: else -> skip
				fi
			}
		/* the owner sweeps (refill, or looking through its partial
		 * set), and may then keep it in its full set */
		:: owner == me && !ofull ->
			sweep();
			if
			:: ofull = 1
			:: skip
			fi
		/* the owner empties its notice stack (take_notices) */
		:: atomic { on_notice[me] -> on_notice[me] = 0 } ->
			if
			:: owner == me -> remote_pending = 0; ofull = 0
			:: else -> route()
			fi
		/* the owner gives the span back (mcentral_uncache_span) */
		:: owner == me ->
			LOCK();
			owner = -1; ofull = 0; sweep(); place();
			UNLOCK()
		/* any CPU reclaims the pending stack */
		:: true -> LOCK(); reclaim(); UNLOCK()
		/* the program frees a live object on this CPU */
		:: atomic { (prog[0] == 1 || prog[1] == 1) ->
			    if
			    :: prog[0] == 1 -> o = 0
			    :: prog[1] == 1 -> o = 1
			    fi;
			    prog[o] = 2 } ->
			span_free();
			assert(accepted)         /* a valid free is never refused */
		/* the program frees again an object whose free completed */
		:: atomic { !released && (DONE(0) || DONE(1)) ->
			    if
			    :: DONE(0) -> o = 0
			    :: DONE(1) -> o = 1
			    fi;
			    dbl[o]++ } ->
			span_free();
			assert(!accepted);       /* a double free is always refused */
			dbl[o]--
		fi
	:: else -> break
	od
}

/* Never given back under a remote free or while pending; on at most one
 * stack, and on one only while pending. */
active proctype monitor()
{
end:	do
	:: atomic { released && (HAZARD || remote_pending) -> assert(false) }
	:: atomic { STACKED > 1 || (STACKED == 1 && !remote_pending) -> assert(false) }
	od
}

init {
	byte i, k;
	bit rsnap[NOBJ];
	atomic {
		k = 0;
		do
		:: k < NCPU -> run cpu(k); k++
		:: else -> break
		od
	};
	_nr_pr == 2;    /* every CPU done (monitor and init left) */
	/* Nothing stranded: a recorded remote free is in a span that is
	 * pending (on a stack: its popper sweeps it or hands it to whoever
	 * does), or that its owner scans (allocation span or partial set), or
	 * listed partial (swept when taken). */
	assert(remote_pending == STACKED);
	k = 0;
	do
	:: k < NOBJ ->
		assert(!remote_bits[k] || remote_pending || (owner >= 0 && !ofull) ||
		       (owner < 0 && listed && alloc_count < NOBJ));
		k++
	:: else -> break
	od;
	/* The drain (kmem_drain_all): the owner gives the span back, every
	 * notice stack is passed on, the mcentral reclaims its stack and
	 * sweeps every listed span. */
	if
	:: owner >= 0 -> owner = -1; ofull = 0; sweep(); place()
	:: else -> skip
	fi;
	k = 0;
	do
	:: k < MAXCPU ->
		if
		:: on_notice[k] -> on_notice[k] = 0; on_central = 1
		:: else -> skip
		fi;
		k++
	:: else -> break
	od;
	if
	:: on_central -> on_central = 0; remote_pending = 0; listed = 0; sweep(); place()
	:: else -> skip
	fi;
	if
	:: listed -> listed = 0; sweep(); place()
	:: else -> skip
	fi;
	/* No lost free: a freed object is free in the bitmaps, nothing is
	 * left recorded, and an empty span went back. */
	assert(!HAZARD && !remote_pending);
	k = 0;
	do
	:: k < NOBJ ->
		assert(prog[k] != 2);
		assert(released || (prog[k] == 1) == (alloc_bits[k] == 1));
		assert(!remote_bits[k]);
		k++
	:: else -> break
	od;
	assert(released == (prog[0] == 0 && prog[1] == 0))
}
