"""Work beside the main thread: the next items read while the current ones are worked on, and
how many cores this process may use. No TensorFlow."""
import concurrent.futures
import os
from typing import Callable, Iterator, List, Sequence, Tuple, TypeVar

Item = TypeVar("Item")
Loaded = TypeVar("Loaded")


def default_workers() -> int:
    """The number of cores this process may run on."""
    # (os.cpu_count() is None only where the count cannot be told: not where l2caf runs)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        os.cpu_count()  # type: ignore[return-value]


def prefetched(items: Sequence[Item], batch_size: int, load: Callable[[Item], Loaded],
               workers: int
               ) -> Iterator[List[Tuple[Item, "concurrent.futures.Future[Loaded]"]]]:
    """Yields the batches of `items` as lists of (item, future of load(item)). The next batch
    goes to the `workers` threads before a batch is yielded, so that decoding it overlaps the
    work on the current one."""
    pool = concurrent.futures.ThreadPoolExecutor(workers)
    try:
        ahead = None
        for start in range(0, len(items), batch_size):
            batch = [(item, pool.submit(load, item)) for item in items[start:start + batch_size]]
            if ahead is not None:
                yield ahead
            ahead = batch
        if ahead is not None:
            yield ahead
    finally:
        # Stopped early (an error, Ctrl-C): the loads not started are not wanted.
        pool.shutdown(wait=True, cancel_futures=True)
