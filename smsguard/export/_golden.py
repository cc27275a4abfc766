"""The golden messages export appends after the test part's: what a device's tokenizer must get right. Light (no
TensorFlow), so that `pack` reads them too: a pack keeps these messages' ids in full."""

from __future__ import annotations

from smsguard.runtime.bundle import LABELS

# Golden messages beside the test part's: the empty text and what the tokenizer, the normaliser and the bag must get
# right on a device (compatibility forms, invisible characters, look-alike letters, spaced letters, case mapping,
# NUL, a no-break space, emoji, more words than maxlen and more n-grams than the bag keeps), with the label each means.
EDGE_CASES = (
    ("", LABELS[0]),
    ("Ｆｒｅｅ ｅｎｔｒｙ ｔｏ ｗｉｎ ａ ｐｒｉｚｅ, ｔｅｘｔ ＷＩＮ ｔｏ ８００８６", LABELS[1]),
    ("W\u200bI\u200bN\u200bN\u200bE\u200bR! a FREE iPhone, text WIN to 80086", LABELS[1]),
    ("Cоngratulаtions! Yоu hаve wоn £1000, cаll 09061701461 nоw", LABELS[1]),
    ("F R E E entry: c.a.l.l 08001234567 to claim", LABELS[1]),
    ("İstanbul'da ΣΑΣ görüşürüz, see you there 😀", LABELS[0]),
    ("see you\u00a0at 6\x00 and bring the charger", LABELS[0]),
    ("ok " * 300, LABELS[0]),
)
EDGE_TEXTS = frozenset(text for text, _ in EDGE_CASES)
