package dev.tether.pipeline;

import dev.tether.pipeline.mixedentities.MixedEntities;
import dev.tether.pipeline.precisewikiqa.PreciseWikiQa;
import dev.tether.pipeline.triviaqa.TriviaQa;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;

/** The tasks {@code tether run --task NAME} knows, in the order help lists them. */
public final class Tasks {
    private static final List<Task> ALL = List.of(new PreciseWikiQa(), new PromptsTask(), new BatchTask(), new TriviaQa(), new MixedEntities());

    private Tasks() {}

    public static List<Task> all() {
        return ALL;
    }

    public static Optional<Task> find(String name) {
        return ALL.stream().filter(t -> t.name().equals(name)).findFirst();
    }

    public static List<String> names() {
        return ALL.stream().map(Task::name).toList();
    }

    /** The task names, for picocli's ${COMPLETION-CANDIDATES} in --task's help. */
    public static final class Names implements Iterable<String> {
        @Override
        public Iterator<String> iterator() {
            return names().iterator();
        }
    }
}
