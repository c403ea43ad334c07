package dev.tether.pipeline.precisewikiqa;

import java.util.ArrayList;
import java.util.List;

/**
 * Cuts a document into sections of 200–500 tokens, as the original pipeline does before asking for a
 * question about one of them. Tokens are estimated as 4/3 per word: the original counts with the
 * question generator's own tokenizer, which tether does not have for an arbitrary server; the
 * estimate is close for English prose and only decides where sections end.
 */
final class Sections {
    static final int MIN_TOKENS = 200;
    static final int MAX_TOKENS = 500;

    private Sections() {}

    static int tokens(String text) {
        int words = text.isBlank() ? 0 : text.trim().split("\\s+").length;
        return (words * 4 + 2) / 3;
    }

    /** Paragraphs are packed into sections; a paragraph longer than the maximum is cut at sentences. */
    static List<String> split(String document) {
        List<String> pieces = new ArrayList<>();
        for (String paragraph : document.split("\\n\\s*\\n")) {
            String p = paragraph.strip();
            if (p.isEmpty()) {
                continue;
            }
            if (tokens(p) <= MAX_TOKENS) {
                pieces.add(p);
            } else {
                StringBuilder chunk = new StringBuilder();
                for (String sentence : p.split("(?<=[.!?])\\s+")) {
                    if (chunk.length() > 0 && tokens(chunk + " " + sentence) > MAX_TOKENS) {
                        pieces.add(chunk.toString());
                        chunk.setLength(0);
                    }
                    chunk.append(chunk.length() > 0 ? " " : "").append(sentence);
                }
                if (chunk.length() > 0) {
                    pieces.add(chunk.toString());
                }
            }
        }
        List<String> sections = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        for (String piece : pieces) {
            if (current.length() > 0 && tokens(current + "\n\n" + piece) > MAX_TOKENS) {
                sections.add(current.toString());
                current.setLength(0);
            }
            current.append(current.length() > 0 ? "\n\n" : "").append(piece);
            if (tokens(current.toString()) >= MIN_TOKENS) {
                sections.add(current.toString());
                current.setLength(0);
            }
        }
        if (current.length() > 0) {
            // A short remainder joins the previous section when it fits, else stands alone.
            if (!sections.isEmpty() && tokens(sections.getLast() + "\n\n" + current) <= MAX_TOKENS) {
                sections.set(sections.size() - 1, sections.getLast() + "\n\n" + current);
            } else {
                sections.add(current.toString());
            }
        }
        // The original drops the last section of longer documents: it is usually references / see also.
        if (sections.size() > 2) {
            sections.removeLast();
        }
        return sections;
    }
}
