"""The confusion matrix as a picture, for the runs that log one."""

from __future__ import annotations

from typing import Any


def confusion_image(labels: list[str], matrix: list[list[int]]) -> Any:
    """A confusion matrix drawn with PIL (no pyplot): rows true, columns predicted."""
    from PIL import Image, ImageDraw, ImageFont

    cell, margin = 44, 80
    size = margin + cell * len(labels)
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    peak = max((max(row) for row in matrix), default=0) or 1
    draw.text((4, 4), "true \\ predicted", fill="black", font=font)
    for i, label in enumerate(labels):
        draw.text((4, margin + i * cell + cell // 3), label[:10], fill="black", font=font)
        draw.text((margin + i * cell + 2, margin - 16), label[:6], fill="black", font=font)
        for j, count in enumerate(matrix[i]):
            shade = int(255 - 200 * count / peak)
            x, y = margin + j * cell, margin + i * cell
            draw.rectangle(
                [x, y, x + cell - 1, y + cell - 1], fill=(shade, shade, 255), outline="grey"
            )
            ink = "black" if shade > 120 else "white"
            draw.text((x + cell // 3, y + cell // 3), str(count), fill=ink, font=font)
    return image
