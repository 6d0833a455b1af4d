"""The LAMBADA-style task's items: a document up to its last sentence that ends on a word."""

from ladder.tools.lm_eval import last_word


def test_the_final_word_is_split_off_its_sentence_and_punctuation():
    doc = "The river rises in the hills.\nIt flows west to the sea."
    assert last_word(doc) == {"context": "The river rises in the hills. It flows west to the", "word": "sea"}


def test_a_closing_sentence_without_a_final_word_is_passed_over():
    assert last_word("The team won the cup. Final score: 2–1.") == {"context": "The team won the", "word": "cup"}
    assert last_word("1934 2–1") is None
