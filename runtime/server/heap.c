/* heap.c — agentix-server's heap while hosts move data: kept warm while bulk items flow, given
 * back when they stop.
 *
 * A large stream item that the host's socket does not take at once is copied into the
 * connection's send queue, so under a fast producer the queue swings by several MiB of 64 KiB to
 * 1 MiB units. With glibc's trim threshold below that swing, every swing gave the heap top back
 * to the kernel and faulted it in again, page by page: on a paravirtualized VM a 1 GiB
 * agentix.files download spent more time in those faults than in its copies (0.35x the floor;
 * 1.0x or better with the heap kept). So the server keeps up to SRV_HEAP_KEEP bytes of free heap
 * top and takes units of up to SRV_HEAP_MMAP_MIN from the heap, and — so that a thousand idle
 * sandboxes do not each hold that much — gives the free heap back once no bulk item has moved for
 * a whole SRV_HEAP_IDLE_MS tick (malloc_trim, which also returns free pages inside the heap). */
#include "runtime/server/server.h"

#include <malloc.h>

#define SRV_HEAP_KEEP ((size_t)32 << 20)     /* free heap top kept (M_TRIM_THRESHOLD) */
#define SRV_HEAP_MMAP_MIN ((size_t)16 << 20) /* smaller blocks come from the heap */
#define SRV_HEAP_IDLE_MS 2000                /* a tick without bulk traffic gives the heap back */

void srv_heap_tune(void)
{
    mallopt(M_TRIM_THRESHOLD, (int)SRV_HEAP_KEEP);
    mallopt(M_MMAP_THRESHOLD, (int)SRV_HEAP_MMAP_MIN);
}

/* Runs only while bulk items move: each tick that saw none gives the free heap back and stops,
 * so an idle server is never woken by it. */
static void on_tick(uv_timer_t *t)
{
    srv_server *s = t->data;
    if (s->heap.moved != s->heap.moved_at_tick) {
        s->heap.moved_at_tick = s->heap.moved; /* still moving: keep the heap warm */
        return;
    }
    malloc_trim(0);
    uv_timer_stop(t);
}

int srv_heap_init(srv_server *s)
{
    s->heap.timer.data = s;
    if (uv_timer_init(s->loop, &s->heap.timer) != 0)
        return -1;
    s->heap.open = true;
    uv_unref((uv_handle_t *)&s->heap.timer); /* never what keeps the loop alive */
    return 0;
}

void srv_heap_moved(srv_server *s, size_t bytes)
{
    s->heap.moved += bytes;
    if (s->heap.open && !uv_is_active((uv_handle_t *)&s->heap.timer))
        uv_timer_start(&s->heap.timer, on_tick, SRV_HEAP_IDLE_MS, SRV_HEAP_IDLE_MS);
}

void srv_heap_close(srv_server *s, uv_close_cb done)
{
    if (!s->heap.open)
        return;
    s->heap.open = false;
    uv_timer_stop(&s->heap.timer);
    uv_close((uv_handle_t *)&s->heap.timer, done);
}
