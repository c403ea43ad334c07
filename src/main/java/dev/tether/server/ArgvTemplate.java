package dev.tether.server;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A server command line with {@code {model}}, {@code {port}} and {@code {host}} placeholders. A
 * template given as one string is split the way a shell splits words (quotes and backslashes), but no
 * shell ever runs it: no expansion, no globbing, no pipes.
 */
public record ArgvTemplate(List<String> words) {
    public static final List<String> PLACEHOLDERS = List.of("model", "port", "host");
    /** A placeholder is a name in braces; other braces (JSON arguments such as {@code '{"a": 1}'}) are literal text. */
    private static final Pattern PLACEHOLDER = Pattern.compile("\\{([A-Za-z_][A-Za-z0-9_-]*)}");

    public ArgvTemplate {
        words = List.copyOf(words);
        if (words.isEmpty()) {
            throw new IllegalArgumentException("the server command is empty");
        }
        for (String word : words) {
            Matcher m = PLACEHOLDER.matcher(word);
            while (m.find()) {
                if (!PLACEHOLDERS.contains(m.group(1))) {
                    throw new IllegalArgumentException("unknown placeholder {" + m.group(1) + "} in the server command '"
                            + String.join(" ", words) + "' (known: {model} {port} {host})");
                }
            }
        }
    }

    public static ArgvTemplate parse(String line) {
        return new ArgvTemplate(split(line));
    }

    public boolean mentions(String placeholder) {
        return words.stream().anyMatch(w -> w.contains("{" + placeholder + "}"));
    }

    public List<String> render(Map<String, String> values) {
        List<String> argv = new ArrayList<>(words.size());
        for (String word : words) {
            Matcher m = PLACEHOLDER.matcher(word);
            argv.add(m.replaceAll(r -> Matcher.quoteReplacement(values.getOrDefault(r.group(1), ""))));
        }
        return argv;
    }

    /** Shell-like word splitting: whitespace separates, '...' is literal, "..." allows \" and \\. */
    static List<String> split(String line) {
        List<String> words = new ArrayList<>();
        StringBuilder word = new StringBuilder();
        boolean inWord = false;
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (Character.isWhitespace(c)) {
                if (inWord) {
                    words.add(word.toString());
                    word.setLength(0);
                    inWord = false;
                }
            } else if (c == '\'') {
                int end = line.indexOf('\'', i + 1);
                if (end < 0) {
                    throw new IllegalArgumentException("unbalanced ' in the server command: " + line);
                }
                word.append(line, i + 1, end);
                i = end;
                inWord = true;
            } else if (c == '"') {
                int j = i + 1;
                for (; j < line.length() && line.charAt(j) != '"'; j++) {
                    char d = line.charAt(j);
                    if (d == '\\' && j + 1 < line.length() && (line.charAt(j + 1) == '"' || line.charAt(j + 1) == '\\')) {
                        d = line.charAt(++j);
                    }
                    word.append(d);
                }
                if (j >= line.length()) {
                    throw new IllegalArgumentException("unbalanced \" in the server command: " + line);
                }
                i = j;
                inWord = true;
            } else if (c == '\\' && i + 1 < line.length()) {
                word.append(line.charAt(++i));
                inWord = true;
            } else {
                word.append(c);
                inWord = true;
            }
        }
        if (inWord) {
            words.add(word.toString());
        }
        return words;
    }
}
