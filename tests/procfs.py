"""What /proc says of a process's memory, for tests of the runtime's page-out (Linux only)."""

from __future__ import annotations


def resident_bytes(pid: int | str, path_fragment: str) -> int:
    """Resident bytes of the mappings of process ``pid`` ("self": this one) whose line names
    ``path_fragment`` (/proc/PID/smaps)."""
    resident, inside = 0, False
    with open(f"/proc/{pid}/smaps", encoding="utf-8") as smaps:
        for line in smaps:
            head = line.split(maxsplit=1)[0]
            if "-" in head and not head.endswith(":"):  # a mapping's first line: range perms offset ...
                inside = path_fragment in line
            elif inside and head == "Rss:":
                resident += int(line.split()[1]) * 1024
    return resident
