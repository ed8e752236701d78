"""Whether the words heard so far look unfinished: the test that lets end of speech wait a little longer.

With a list of commands the answer is exact: anything but a whole command is unfinished (in
grammar mode the decoder's words are always on a path of the grammar, so that is a command's
beginning, or nothing yet). Without one it is a guess from the last word: a sentence does not end
in "and", "for", "the" ... Pure functions: call them from any thread.
"""

from __future__ import annotations

from collections.abc import Callable

#: last words that leave a command open ("set a timer for", "turn on the")
OPEN_ENDINGS = frozenset(
    "and or but for to of the a an in on at with from by into about my your his her its our their"
    " this that these those set turn switch play put call remind what is are".split()
)


def unfinished_test(commands: list[str] | None, words: Callable[[str], list[str]]) -> Callable[[str], bool]:
    """A test of a transcript so far: True when it looks unfinished.

    :param commands: the phrases of ``commands`` mode, or None (a grammar file or a language model).
    :param words: how a phrase is split into the dictionary's words (the plugin's ``command_words``).
    """
    if commands is not None:
        whole = {" ".join(words(command)) for command in commands}
        return lambda text: " ".join(words(text)) not in whole
    return lambda text: bool(words(text)) and words(text)[-1] in OPEN_ENDINGS
