package dev.tether.server;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Server settings given on the command line instead of in a tether.yaml (issue 14): context size,
 * parallel slots and threads, another program for a built-in profile, and extra arguments appended to
 * any profile's argv. Each built-in profile spells the three settings its own way (below); a profile
 * that has no spelling for one refuses it rather than dropping it.
 *
 * @param ctx        total context in tokens, split over the slots (llama.cpp's {@code -c})
 * @param parallel   requests decoded at once (slots)
 * @param threads    CPU threads for inference
 * @param executable the program that replaces the profile's first word
 * @param extraArgs  appended to the argv as given; {@code {model} {port} {host}} are filled in there too
 */
public record ServerFlags(Integer ctx, Integer parallel, Integer threads, String executable, List<String> extraArgs) {
    public static final ServerFlags NONE = new ServerFlags(null, null, null, null, List.of());

    /** The built-in profiles' own flags for --ctx, --parallel and --threads; absent means "cannot take it". */
    static final Map<String, Map<String, String>> SPELLINGS = Map.of(
            Profiles.EMBEDDED, Map.of("ctx", "--ctx", "parallel", "--parallel", "threads", "--threads"),
            "llama-server", Map.of("ctx", "--ctx-size", "parallel", "--parallel", "threads", "--threads"),
            "vllm", Map.of("parallel", "--max-num-seqs"),
            "sglang", Map.of("parallel", "--max-running-requests"));

    /** What to tell a user whose profile cannot take a setting: why, then what to do instead. */
    private static final Map<String, String> INSTEAD = Map.of(
            "vllm/ctx", " (vLLM's context is per request): pass -- --max-model-len N, or --server-arg=--max-model-len=N",
            "sglang/ctx", " (SGLang's context is per request): pass -- --context-length N, or --server-arg=--context-length=N");

    private static final String INSTEAD_OF_USER_PROFILE = " (tether does not know the flags of a tether.yaml profile): "
            + "put them in its command, or pass them after --, or with --server-arg=FLAG";

    public ServerFlags {
        extraArgs = extraArgs == null ? List.of() : List.copyOf(extraArgs);
        positive("--ctx", ctx);
        positive("--parallel", parallel);
        positive("--threads", threads);
        if (executable != null && executable.isBlank()) {
            throw new IllegalArgumentException("--executable needs a program path, not an empty string");
        }
    }

    private static void positive(String flag, Integer value) {
        if (value != null && value < 1) {
            throw new IllegalArgumentException(flag + " must be at least 1, not " + value);
        }
    }

    public boolean isEmpty() {
        return equals(NONE);
    }

    /**
     * The profile with these settings in its argv.
     *
     * @param builtIn whether {@code profile} is a built-in one as shipped (a tether.yaml profile of the same name is not)
     * @throws IllegalArgumentException (a usage error) when the profile cannot take a setting
     */
    public Profile applyTo(Profile profile, boolean builtIn) {
        if (isEmpty()) {
            return profile;
        }
        String name = profile.name();
        Map<String, String> spelling = builtIn ? SPELLINGS.getOrDefault(name, Map.of()) : Map.of();
        List<String> words = new ArrayList<>(profile.command().words());
        if (executable != null) {
            if (name.equals(Profiles.EMBEDDED) && builtIn) {
                throw new IllegalArgumentException("--executable replaces a server program, and the embedded engine is "
                        + "tether's own; use it with --profile vllm, llama-server, sglang or a tether.yaml profile");
            }
            if (name.equals(Profiles.COMMAND)) {
                throw new IllegalArgumentException("--executable is for profiles; with --command, write the program "
                        + "as the command's first word");
            }
            words.set(0, executable);
        }
        if (builtIn && name.equals(Profiles.EMBEDDED)) {
            int slots = parallel != null ? parallel : 4;
            if (ctx != null && ctx < 16 * slots) {
                throw new IllegalArgumentException("--ctx " + ctx + " is too small for " + slots
                        + " parallel slots: the embedded engine needs at least 16 tokens per slot (--ctx " + 16 * slots + ")");
            }
        }
        setting(words, spelling, builtIn, name, "ctx", "--ctx", ctx);
        setting(words, spelling, builtIn, name, "parallel", "--parallel", parallel);
        setting(words, spelling, builtIn, name, "threads", "--threads", threads);
        words.addAll(extraArgs);
        return profile.withCommand(new ArgvTemplate(words));
    }

    private static void setting(List<String> words, Map<String, String> spelling, boolean builtIn, String profile,
                                String key, String option, Integer value) {
        if (value == null) {
            return;
        }
        String flag = spelling.get(key);
        if (flag == null) {
            String instead;
            if (profile.equals(Profiles.COMMAND)) {
                instead = ": write the server's own flag into --command";
            } else if (!builtIn) {
                instead = INSTEAD_OF_USER_PROFILE;
            } else {
                instead = INSTEAD.getOrDefault(profile + "/" + key, ": pass the server's own flag after --, or with --server-arg=FLAG");
            }
            throw new IllegalArgumentException("profile " + profile + " cannot take " + option + instead);
        }
        words.add(flag);
        words.add(String.valueOf(value));
    }
}
