"""Count words in inputData.text: the total, the distinct words and the most frequent ones."""

import re
from collections import Counter

WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*", re.UNICODE)


def handler(event, context):
    text = event.get("text", "")
    if not isinstance(text, str):
        raise TypeError(f"inputData.text must be a string, not {type(text).__name__}")
    top_n = int(event.get("top", 5))

    words = [word.lower() for word in WORD.findall(text)]
    counts = Counter(words)
    print(f"counted {len(words)} words, {len(counts)} distinct")
    return {
        "words": len(words),
        "distinctWords": len(counts),
        "lines": text.count("\n") + 1 if text else 0,
        "top": [{"word": word, "count": count} for word, count in counts.most_common(top_n)],
    }
