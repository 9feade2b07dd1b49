"""Count the characters two strings have in common, with a dynamic workflow (seed example).

The number of task calls depends on the lengths of the strings, known only at run time, so
``count_characters`` is a ``@dynamic``: its body runs with real strings and builds the graph.

Run it::

    caddis run examples/count_characters.py wf --s1 Pear --s2 Earth
    python examples/count_characters.py
"""

from __future__ import annotations

from caddis import dynamic, task, workflow


@task
def return_index(character: str) -> int:
    """Computes the character index (which needs to fit into the 26 characters list)."""
    if character.islower():
        return ord(character) - ord("a")
    return ord(character) - ord("A")


@task
def update_list(freq_list: list[int], list_index: int) -> list[int]:
    """Notes the frequency of characters."""
    freq_list[list_index] += 1
    return freq_list


@task
def derive_count(freq1: list[int], freq2: list[int]) -> int:
    """Derives the number of common characters."""
    count = 0
    for i in range(26):
        count += min(freq1[i], freq2[i])
    return count


@dynamic
def count_characters(s1: str, s2: str) -> int:
    """Calls the required tasks and returns the final result."""
    # s1 and s2 are real strings here; the task calls below return promises.
    freq1 = [0] * 26
    freq2 = [0] * 26
    for i in range(len(s1)):
        index = return_index(character=s1[i])
        freq1 = update_list(freq_list=freq1, list_index=index)
    for i in range(len(s2)):
        index = return_index(character=s2[i])
        freq2 = update_list(freq_list=freq2, list_index=index)
    return derive_count(freq1=freq1, freq2=freq2)


@workflow
def wf(s1: str, s2: str) -> int:
    """Calls the dynamic workflow and returns the result."""
    return count_characters(s1=s1, s2=s2)


if __name__ == "__main__":
    print(wf(s1="Pear", s2="Earth"))
