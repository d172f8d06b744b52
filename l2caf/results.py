"""results.jsonl: one line per heatmap, written as it is made, so an interrupted run loses
nothing and a rerun continues where it stopped."""
import json
import os


def _line_key(record):
    return record["image"], record.get("class_id")


class ResultsFile(object):
    """Appends records to `path`, flushed and synced to disk line by line (or per batch).

    Records already in the file (from an interrupted run) are known by (image, class_id):
    `is_done` tells which work to skip. A torn last line (a kill during a write) is dropped.
    """

    def __init__(self, path):
        self.path = path
        self.done = set()
        if os.path.exists(path):
            self._recover()
        self._stream = open(path, "a")

    def _recover(self):
        kept = []
        with open(self.path) as stream:
            for line in stream:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut by a kill is written again
                kept.append(line if line.endswith("\n") else line + "\n")
                self.done.add(_line_key(record))
        with open(self.path + ".tmp", "w") as stream:
            stream.writelines(kept)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(self.path + ".tmp", self.path)

    def is_done(self, image, class_id=None):
        return (image, class_id) in self.done

    def write(self, records):
        """Appends records and syncs them to disk before returning."""
        for record in records:
            self._stream.write(json.dumps(record, sort_keys=False) + "\n")
            self.done.add(_line_key(record))
        self._stream.flush()
        os.fsync(self._stream.fileno())

    def close(self):
        self._stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def read_results(path):
    """All records of a results.jsonl file (torn lines skipped)."""
    records = []
    with open(path) as stream:
        for line in stream:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records
