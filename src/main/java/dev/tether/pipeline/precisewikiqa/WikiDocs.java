package dev.tether.pipeline.precisewikiqa;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tether.pipeline.InputException;
import dev.tether.pipeline.Jsonl;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The wiki documents questions are made from: the original pipeline's {@code doc_goodwiki_h_score.jsonl}
 * (fields title, document, h_score_cat, pageid, revid, description, categories). A small sample written
 * for tether ships in the jar so the quick start runs offline; {@code --wiki-file} points at the full one.
 */
public final class WikiDocs {
    public static final String FILE_NAME = "doc_goodwiki_h_score.jsonl";
    private static final String SAMPLE = "/dev/tether/pipeline/data/" + FILE_NAME;

    /** One document. */
    public record Doc(ObjectNode fields) {
        public String title() {
            return fields.get("title").asText();
        }

        public String document() {
            return fields.get("document").asText();
        }

        public int bucket() {
            return fields.get("h_score_cat").asInt();
        }
    }

    private WikiDocs() {}

    /** The bundled sample, copied to {@code dir} (so the run's inputs are files a user can see). */
    public static Path sample(Path dir) throws IOException {
        Path file = dir.resolve(FILE_NAME);
        if (!Files.exists(file)) {
            Files.createDirectories(dir);
            try (InputStream in = WikiDocs.class.getResourceAsStream(SAMPLE)) {
                if (in == null) {
                    throw new IOException("the bundled wiki sample is missing from this build");
                }
                Path temp = Files.createTempFile(dir, ".wiki-", ".tmp");
                Files.copy(in, temp, StandardCopyOption.REPLACE_EXISTING);
                Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            }
        }
        return file;
    }

    /**
     * The bundled sample, read without copying it anywhere (run copies it next to its output only once generate
     * actually starts, so a run that fails before that leaves no file behind).
     */
    public static List<Doc> loadSample() throws InputException, IOException {
        Path temp = Files.createTempFile("tether-wiki-", ".jsonl");
        try {
            try (InputStream in = WikiDocs.class.getResourceAsStream(SAMPLE)) {
                if (in == null) {
                    throw new IOException("the bundled wiki sample is missing from this build");
                }
                Files.copy(in, temp, StandardCopyOption.REPLACE_EXISTING);
            }
            return load(temp);
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    /** Reads and checks every line; a bad one is file:line and what is wrong. */
    public static List<Doc> load(Path file) throws InputException {
        if (!Files.isRegularFile(file)) {
            throw new InputException("wiki documents not found: " + file + " (give --wiki-file, or leave it out to use the bundled sample)");
        }
        List<Doc> docs = new ArrayList<>();
        for (Jsonl.Line line : Jsonl.read(file)) {
            if (!line.ok()) {
                throw new InputException(file + ":" + line.number() + ": " + line.error());
            }
            ObjectNode o = line.object();
            for (String field : List.of("title", "document")) {
                if (!o.path(field).isTextual() || o.get(field).asText().isBlank()) {
                    throw new InputException(file + ":" + line.number() + ": \"" + field + "\" must be a non-empty string");
                }
            }
            JsonNode bucket = o.get("h_score_cat");
            if (bucket == null || !bucket.isIntegralNumber()) {
                throw new InputException(file + ":" + line.number() + ": \"h_score_cat\" must be an integer bucket (0-9)");
            }
            docs.add(new Doc(o));
        }
        if (docs.isEmpty()) {
            throw new InputException("wiki documents file is empty: " + file);
        }
        return docs;
    }
}
