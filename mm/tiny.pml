/*
 * mm/tiny.pml - Promela model of the tiny allocator's cross-CPU protocol
 * (mm/tiny.c, mm/tiny.h): tiny_take, tiny_free_current, tiny_restart,
 * tiny_free and tiny_retire. Checked by tools/check-model.sh (spin, make
 * test).
 *
 * One 16-byte block of NOBJ tiny objects (object k ends at end bit k),
 * the current block of CPU 0, and NCPU CPUs. A CPU is one process doing,
 * in any order and up to STEPS times: allocate the next object of the
 * block (CPU 0 while the block is its current one), free a live object,
 * free again an object whose free has completed (a double free in program
 * order), or retire the block (CPU 0). A free by CPU 0 while the block is
 * current is tiny_free_current: checked against its end bit, its local
 * mask and the block's freed mask, recorded in the local mask, and the
 * block starts over when the local mask equals the end mask (end mask
 * cleared, then the freed mask taken in one exchange). Any other free is
 * tiny_free: the block's own alloc bit, the end bit, fetch_or on the freed
 * mask, the end bit again (gone: the block started over, and the free
 * takes its bit back with fetch_and unless the exchange took it), fetch_sub
 * on the balance, and the block given back by whoever brings the balance
 * to 0. Every
 * statement is one atomic step of the C code (a load, a store, an atomic
 * read-modify-write); sequentially consistent memory.
 *
 * Checked: an object is never handed out twice; a valid free is never
 * refused; every double free
 * is reported exactly once, at the call or, when it met a free on the
 * block's CPU that it could not see, when the block started over or was
 * retired; the block is given back once, never while an object in it is
 * live or a free of it is in flight; and after the drain (CPU 0 retires
 * the block) the block is given back exactly when every object was freed,
 * and otherwise its balance is the number of live objects.
 */
#ifndef NCPU
#define NCPU 2
#endif
#define NOBJ 2   /* the object choices below spell out 0 and 1 */
#ifndef STEPS
#define STEPS 5
#endif

/* The block (its span's tiny_meta and its alloc bit). */
bit ends[NOBJ];       /* written by CPU 0 only */
bit freed[NOBJ];      /* frees from elsewhere (atomic OR) */
short balance;        /* live objects not yet counted in, less frees from elsewhere */
bit released;         /* given back (its alloc bit cleared) */

/* CPU 0's mcache. */
bit current = 1;      /* the block is its current block */
byte offset;          /* next object to hand out */
bit freed_local[NOBJ];
byte undone;          /* second frees found by restarts, still counted */

/* Ghost: the program's view of each object: 0 not handed out (or its free
 * completed), 1 live, 2 a free of it in progress. */
byte prog[NOBJ];
bit ever[NOBJ];       /* handed out at least once */
byte dbl[NOBJ];       /* double frees of it being tried (meanwhile its
                         slot is not handed out again, nor the block given
                         back: a free of the new object would look the
                         same, and the block's record may be reused) */
byte inflight;        /* frees between their first and last touch */
byte doubles;         /* double frees tried so far */
byte reports;         /* double frees reported (at the call or later) */

#define DONE(k)  (prog[k] == 0 && ever[k])
#define LIVE     ((prog[0] == 1) + (prog[1] == 1))

/* The block goes back (mcache_free of its slot). */
inline give_back() {
	atomic {
		dbl[0] + dbl[1] == mydbl ->   /* ghost: no other (see dbl) */
		assert(!released);
		assert(prog[0] != 1 && prog[1] != 1);   /* no live object in it */
		released = 1
	}
}

/* The program's free of o took effect. */
inline took_effect() {
	if
	:: prog[o] == 2 -> prog[o] = 0
	:: else -> skip
	fi
}

/* tiny_restart: end bits first, then the freed mask in one exchange; a
 * bit there was a second free of an object freed here: reported, and its
 * decrement of the balance (done or to come) cancelled when the block is
 * retired, so that the balance of a current block never rises to 0. */
inline restart() {
	atomic { ends[0] = 0; ends[1] = 0 };
	atomic {
		twice = freed[0] + freed[1];
		freed[0] = 0; freed[1] = 0
	};
	reports = reports + twice;
	undone = undone + twice;   /* cancelled at retirement */
	offset = 0; freed_local[0] = 0; freed_local[1] = 0
}

/* tiny_free_current by CPU 0 of object o (its current block). */
inline free_current() {
	if
	:: !ends[o] -> accepted = 0
	:: else ->
		if
		:: freed_local[o] || freed[o] -> accepted = 0
		:: else ->
			freed_local[o] = 1; accepted = 1; took_effect();
			if
			:: freed_local[0] == ends[0] && freed_local[1] == ends[1] -> restart()
			:: else -> skip
			fi
		fi
	fi
}

/* tiny_free by CPU me of object o (not its current block). */
inline free_elsewhere() {
	if
	:: released -> accepted = 0    /* mspan_obj_live of the block */
	:: else ->
		if
		:: !ends[o] -> accepted = 0
		:: else ->
			atomic {
				if
				:: freed[o] -> accepted = 0
				:: else -> freed[o] = 1; accepted = 1; took_effect()
				fi
			};
			/* the block started over meanwhile: whoever clears
			 * the bit owns it (the exchange, or this fetch_and) */
			if
			:: accepted && !ends[o] ->
				atomic {
					if
					:: freed[o] -> freed[o] = 0; accepted = 0
					:: else -> skip
					fi
				}
			:: else -> skip
			fi;
			if
			:: accepted ->
				atomic { balance--; left = balance };
				if
				:: left == 0 -> give_back()
				:: else -> skip
				fi
			:: else -> skip
			fi
		fi
	fi
}

inline do_free() {
	inflight++;
	if
	:: me == 0 && current -> free_current()
	:: else -> free_elsewhere()
	fi;
	inflight--
}

/* tiny_retire by CPU 0. */
inline retire() {
	local0 = freed_local[0]; local1 = freed_local[1];
	twice = 0;
	if
	:: local0 || local1 ->
		atomic {
			twice = (local0 && freed[0]) + (local1 && freed[1]);
			freed[0] = freed[0] || local0; freed[1] = freed[1] || local1
		}
	:: else -> skip
	fi;
	reports = reports + twice;
	live = ends[0] + ends[1] - local0 - local1 + twice + undone;
	atomic { balance = balance + live; left = balance };
	current = 0; offset = 0; freed_local[0] = 0; freed_local[1] = 0; undone = 0;
	if
	:: left == 0 -> give_back()
	:: else -> skip
	fi
}

proctype cpu(byte me)
{
	byte o, n = 0, twice;
	short left, live;
	bit accepted, local0, local1, mydbl;

	do
	:: n < STEPS -> n++;
		if
		/* tiny_take: the next object of the current block */
		:: atomic { me == 0 && current && offset < NOBJ && dbl[offset] == 0 ->
			assert(prog[offset] == 0);   /* never handed out twice */
			ends[offset] = 1; prog[offset] = 1; ever[offset] = 1;
			offset++ }
		/* the program frees a live object on this CPU */
		:: atomic { (prog[0] == 1 || prog[1] == 1) ->
			    if
			    :: prog[0] == 1 -> o = 0
			    :: prog[1] == 1 -> o = 1
			    fi;
			    prog[o] = 2 } ->
			do_free();
			assert(accepted);   /* a valid free is never refused */
			if
			:: !accepted -> reports++   /* reported, at this call */
			:: else -> skip
			fi
		/* the program frees again an object whose free completed */
		:: atomic { !released && (DONE(0) || DONE(1)) ->
			    if
			    :: DONE(0) -> o = 0
			    :: DONE(1) -> o = 1
			    fi;
			    dbl[o]++; doubles++; mydbl = 1 } ->
			do_free();
			if
			:: !accepted -> reports++
			:: else -> skip   /* must be found later (twice) */
			fi;
			atomic { dbl[o]--; mydbl = 0 }
		/* CPU 0 retires the block */
		:: atomic { me == 0 && current -> skip } -> retire()
		:: else -> break   /* nothing left to do */
		fi
	:: else -> break
	od
}

init {
	byte k, o, twice;
	short left, live;
	bit local0, local1, mydbl;
	atomic {
		k = 0;
		do
		:: k < NCPU -> run cpu(k); k++
		:: else -> break
		od
	};
	_nr_pr == 1;    /* every CPU done */
	assert(inflight == 0);
	/* The drain: CPU 0 gives its block back (tiny_retire). */
	if
	:: current -> retire()
	:: else -> skip
	fi;
	/* Every double free reported exactly once (a valid free refused
	 * after one counts as its report). */
	assert(reports == doubles);
	/* No lost free, no early give-back. */
	assert(released == (LIVE == 0));
	assert(released || balance == LIVE)
}
