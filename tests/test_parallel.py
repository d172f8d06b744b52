"""l2caf.parallel: the next items are loaded while the current ones are worked on, and a
consumer that stops early does not wait for loads it will never use."""
import time

from l2caf import parallel


def test_every_item_is_loaded_once_in_batches_in_order():
    loaded = []

    def load(item):
        loaded.append(item)
        return item * item
    batches = [[(item, future.result()) for item, future in batch]
               for batch in parallel.prefetched(range(7), 3, load, workers=2)]
    assert batches == [[(0, 0), (1, 1), (2, 4)], [(3, 9), (4, 16), (5, 25)], [(6, 36)]]
    assert sorted(loaded) == list(range(7))


def test_stopping_early_cancels_the_loads_not_started():
    loaded = []

    def load(item):
        loaded.append(item)
        if item == 2:  # still loading when the consumer stops
            time.sleep(1.0)
        return item
    batches = parallel.prefetched(range(100), 2, load, workers=1)
    first = next(batches)
    assert [future.result() for _, future in first] == [0, 1]
    # The second batch (2, 3) was handed to the one thread before the first was yielded:
    # stopping waits for 2, the load under way, and cancels 3.
    batches.close()
    assert loaded == [0, 1, 2]
