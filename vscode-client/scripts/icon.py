"""Draws images/icon.png (128x128, the Marketplace's size) with the standard library only:
a magnifying lens over three lines of code, on a rounded dark-blue square. Run from
vscode-client/: python3 scripts/icon.py"""

import math
import struct
import zlib

SIZE, SUPER = 128, 4
BG, LINE, LENS, GLASS = (30, 58, 95), (140, 200, 255), (255, 255, 255), (58, 96, 140)


def inside_rounded(x: float, y: float, radius: float = 24) -> bool:
    cx = min(max(x, radius), SIZE - radius)
    cy = min(max(y, radius), SIZE - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2


def colour(x: float, y: float) -> tuple[int, int, int, int] | None:
    if not inside_rounded(x, y):
        return None
    lens_x, lens_y, r = 72, 56, 30
    d = math.hypot(x - lens_x, y - lens_y)
    # The handle: a thick segment from the ring down-right.
    hx, hy = x - (lens_x + 21), y - (lens_y + 21)
    along = (hx + hy) / math.sqrt(2)
    across = abs(hx - hy) / math.sqrt(2)
    if 0 <= along <= 34 and across <= 7:
        return (*LENS, 255)
    if r - 6 <= d <= r + 1:
        return (*LENS, 255)
    for row, (start, end) in enumerate([(20, 70), (30, 84), (20, 60)]):
        top = 38 + row * 18
        if top <= y <= top + 7 and start <= x <= end:
            return (*(LENS if d < r - 6 else LINE), 255)
    if d < r - 6:
        return (*GLASS, 255)
    return (*BG, 255)


def main() -> None:
    rows = []
    for py in range(SIZE):
        row = bytearray([0])
        for px in range(SIZE):
            acc = [0, 0, 0, 0]
            for sy in range(SUPER):
                for sx in range(SUPER):
                    c = colour(px + (sx + 0.5) / SUPER, py + (sy + 0.5) / SUPER)
                    if c:
                        for i in range(3):
                            acc[i] += c[i] * c[3]
                        acc[3] += c[3]
            n = SUPER * SUPER
            alpha = acc[3] // n
            rgb = [acc[i] // acc[3] if acc[3] else 0 for i in range(3)]
            row += bytes([*rgb, alpha])
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")
    with open("images/icon.png", "wb") as out:
        out.write(png)


if __name__ == "__main__":
    main()
