package dev.tether.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

/**
 * What made a record: the model and the sampling settings, written into every output record as
 * {@code "produced_by": {"model": ..., "max_tokens": ..., "temperature": ...}} (eval's raw verdicts name the
 * {@code judge}). A resume whose settings differ from the records already in the file would mix two models or two
 * settings in one result, so it is refused before anything starts ({@link #check}).
 */
public final class ProducedBy {
    /** One setting: its field in the record, its value now, and the option that sets it (null: fixed by tether). */
    private record Setting(String field, JsonNode value, String option) {}

    private final List<Setting> settings = new ArrayList<>();

    public ProducedBy with(String field, String value, String option) {
        settings.add(new Setting(field, Jsonl.JSON.getNodeFactory().textNode(value), option));
        return this;
    }

    public ProducedBy with(String field, long value, String option) {
        settings.add(new Setting(field, Jsonl.JSON.getNodeFactory().numberNode(value), option));
        return this;
    }

    public ProducedBy with(String field, double value, String option) {
        settings.add(new Setting(field, Jsonl.JSON.getNodeFactory().numberNode(value), option));
        return this;
    }

    public ObjectNode json() {
        ObjectNode o = Jsonl.JSON.createObjectNode();
        settings.forEach(s -> o.set(s.field(), s.value()));
        return o;
    }

    /** Adds {@code produced_by} to a record. */
    public void stamp(ObjectNode record) {
        record.set("produced_by", json());
    }

    /** The settings in which a record's produced_by differs from these, as "--max-tokens 64 there, 128 now"; empty when none. */
    List<String> differences(JsonNode recorded) {
        List<String> differences = new ArrayList<>();
        for (Setting s : settings) {
            JsonNode was = recorded.get(s.field());
            boolean same = was != null && (was.isNumber() && s.value().isNumber()
                    ? was.asDouble() == s.value().asDouble() : was.equals(s.value()));
            if (!same) {
                String name = s.option() != null ? s.option() : s.field();
                differences.add(name + " " + show(was) + " there, " + show(s.value()) + " now");
            }
        }
        return differences;
    }

    private static String show(JsonNode v) {
        return v == null || v.isNull() ? "(none)" : v.isTextual() ? v.asText() : v.toString();
    }

    /**
     * Refuses to resume into {@code file} when one of its records was produced with other settings: one line naming the
     * file, the difference and the two ways on. Records without produced_by (written before tether recorded it) are
     * not held against a resume; failure records are retried anyway but count too (they name the settings of the run
     * that wrote them). A missing file is fine.
     *
     * @param elsewhere the option that writes somewhere else, e.g. "--output-dir" or "--output"
     */
    public void check(String step, Path file, String elsewhere) throws InputException {
        if (!Files.exists(file)) {
            return;
        }
        for (Jsonl.Line line : Jsonl.read(file)) {
            if (!line.ok() || !line.object().path("produced_by").isObject()) {
                continue;
            }
            List<String> differences = differences(line.object().get("produced_by"));
            if (!differences.isEmpty()) {
                throw new InputException(step + ": " + file + " holds records made with other settings ("
                        + String.join(", ", differences) + "; first at line " + line.number() + "); a resume would mix "
                        + "them: re-run with --no-resume to start over (the old file is kept as .bak), or give another "
                        + elsewhere);
            }
        }
    }

    @Override
    public String toString() {
        return settings.stream().map(s -> s.field() + "=" + show(s.value())).collect(Collectors.joining(", "));
    }
}
