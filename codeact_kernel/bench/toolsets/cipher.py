"""Secret messages: an inbox of encoded notes and the decoders that read them.

Each message names its encoding: "plain", "reverse", "atbash" or "caesar:<shift>"
(encoded by shifting letters forward by <shift>; decode with the same shift).
"""

from __future__ import annotations

import re

__all__ = [
    "atbash",
    "caesar_decode",
    "extract_numbers",
    "inbox",
    "read_message",
    "reverse_text",
]

# id: (sender, encoding, body as it arrived)
_MESSAGES = {
    "M1": ("ada", "caesar:3", "Phhw dw wkh kduerxu dw 7 dqg eulqj 12 odqwhuqv"),
    "M2": ("ben", "reverse", "tam eulb eht rednu si yek eht dna 7144 si edoc tluav ehT"),
    "M3": ("cleo", "atbash", "Hsrk 35 xizgvh lu ovnlmh gl gsv mligs wlxp"),
    "M4": ("ada", "caesar:11", "Esp eclty wplgpd le 9 qczx awleqzcx 6"),
    "M5": ("dev", "plain", "Lunch moved to Friday at noon"),
    "M6": ("ben", "caesar:7", "Iypun 3 thwz huk 20 jhukslz av aol ohyivby"),
    "M7": ("cleo", "reverse", "syad 03 yreve sneppah noitator drowssaP"),
    "M8": ("dev", "atbash", "Gsv nvvgrmt szh 14 tfvhgh zmw 2 hkvzpvih"),
}


def inbox() -> list[str]:
    """The ids of every message in the inbox, oldest first ("M1", "M2", …)."""
    return list(_MESSAGES)


def read_message(message_id: str) -> dict[str, str]:
    """A message as it arrived: {"id", "sender", "encoding", "body"} with the body still encoded.

    `encoding` is "plain", "reverse", "atbash" or "caesar:<shift>".
    """
    try:
        sender, encoding, body = _MESSAGES[message_id]
    except KeyError:
        raise ValueError(f"no message {message_id!r}; see inbox()") from None
    return {"id": message_id, "sender": sender, "encoding": encoding, "body": body}


def _shift(text: str, shift: int) -> str:
    letters = []
    for char in text:
        if "a" <= char <= "z":
            letters.append(chr((ord(char) - ord("a") + shift) % 26 + ord("a")))
        elif "A" <= char <= "Z":
            letters.append(chr((ord(char) - ord("A") + shift) % 26 + ord("A")))
        else:
            letters.append(char)
    return "".join(letters)


def caesar_decode(text: str, shift: int) -> str:
    """Undo a Caesar cipher that shifted letters forward by `shift` (case kept, other
    characters unchanged). Example: caesar_decode("Khoor", 3) returns "Hello".
    """
    return _shift(text, -shift)


def reverse_text(text: str) -> str:
    """The text backwards. Example: reverse_text("olleH") returns "Hello"."""
    return text[::-1]


def atbash(text: str) -> str:
    """Swap each letter for its mirror in the alphabet (a<->z, b<->y, …); its own inverse.

    Example: atbash("Svool") returns "Hello".
    """
    mirrored = []
    for char in text:
        if "a" <= char <= "z":
            mirrored.append(chr(ord("a") + ord("z") - ord(char)))
        elif "A" <= char <= "Z":
            mirrored.append(chr(ord("A") + ord("Z") - ord(char)))
        else:
            mirrored.append(char)
    return "".join(mirrored)


def extract_numbers(text: str) -> list[int]:
    """The whole numbers written in the text, in order.

    Example: extract_numbers("3 cats, 12 dogs") -> [3, 12]
    """
    return [int(number) for number in re.findall(r"\d+", text)]
