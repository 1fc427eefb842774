#!/usr/bin/env python3
"""Writes charlist.txt: printable ASCII, GB2312 row 1 (punctuation) and row 3 (full-width forms),
and GB2312 level 1 (rows 16-55, the 3755 common hanzi)."""
chars = [chr(c) for c in range(0x20, 0x7F)]
def row(r, n=94):
    out = []
    for i in range(n):
        b = bytes([0xA0 + r, 0xA1 + i])
        try:
            out.append(b.decode("gb2312"))
        except UnicodeDecodeError:
            pass
    return out
chars += row(1) + row(3)
for r in range(16, 56):
    chars += row(r, 89 if r == 55 else 94)
seen = []
for c in chars:
    if c not in seen:
        seen.append(c)
open("charlist.txt", "w", encoding="utf-8").write("".join(seen) + "\n")
print(len(seen), "characters")
