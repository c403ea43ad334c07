package dev.tether.pipeline.mixedentities;

import dev.tether.pipeline.InputException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Made-up entity names mixed from parts of real ones, as the original runner makes them (HalluLens
 * tasks/refusal_test/entities_generation.py): for animals, plants and bacteria, a species' epithet with another genus
 * of its family; for medicines, each word from a different name with as many words. A mix that is a real name in the
 * list is never used. The same lists and seed give the same names.
 */
final class NameMixer {
    static final List<String> TYPES = List.of("medicine", "animal", "plant", "bacteria");
    private static final String BUNDLED = "/dev/tether/pipeline/data/entities/";

    private NameMixer() {}

    /** A list's lines without comments and blank lines: from DIR/type.txt, or the bundled list when dir is null. */
    static List<String> lines(Path dir, String type) throws IOException, InputException {
        String text;
        if (dir == null) {
            try (InputStream in = NameMixer.class.getResourceAsStream(BUNDLED + type + ".txt")) {
                if (in == null) {
                    throw new IOException("the bundled " + type + " list is missing from this build");
                }
                text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
        } else {
            text = Files.readString(dir.resolve(type + ".txt"));
        }
        List<String> lines = new ArrayList<>();
        for (String line : text.split("\r?\n")) {
            if (!line.isBlank() && !line.startsWith("#")) {
                lines.add(line.strip());
            }
        }
        if (lines.isEmpty()) {
            throw new InputException((dir == null ? "the bundled " + type + " list" : dir.resolve(type + ".txt")) + " has no names");
        }
        return lines;
    }

    /** The types whose list is in dir (all four for the bundled lists), in the original's order. */
    static List<String> types(Path dir) throws InputException {
        if (dir == null) {
            return TYPES;
        }
        if (!Files.isDirectory(dir)) {
            throw new InputException("--entities-dir " + dir + " is not a directory");
        }
        List<String> types = TYPES.stream().filter(t -> Files.isRegularFile(dir.resolve(t + ".txt"))).toList();
        if (types.isEmpty()) {
            throw new InputException("--entities-dir " + dir + " has none of medicine.txt, animal.txt, plant.txt, bacteria.txt "
                    + "(one real name per line; for the species lists FAMILY<TAB>Genus species)");
        }
        return types;
    }

    /** n made-up names of a type, or an input error when the list cannot give that many. */
    static List<String> mix(String type, List<String> lines, int n, SplittableRandom random, String where) throws InputException {
        Set<String> made = type.equals("medicine") ? medicines(lines, n, random) : species(lines, n, random, where);
        if (made.size() < n) {
            throw new InputException(where + " gives only " + made.size() + " made-up " + type + " names, fewer than --N " + n
                    + "; give a smaller --N or longer lists with --entities-dir");
        }
        return List.copyOf(made);
    }

    private record Species(String family, String genus, String epithet) {}

    private static Set<String> species(List<String> lines, int n, SplittableRandom random, String where) throws InputException {
        List<Species> all = new ArrayList<>();
        Set<String> real = new HashSet<>();
        Map<String, Set<String>> generaByFamily = new LinkedHashMap<>();
        Set<String> allGenera = new LinkedHashSet<>();
        for (String line : lines) {
            String[] parts = line.split("\t");
            String name = parts[parts.length - 1].strip();
            String family = parts.length > 1 ? parts[0].strip() : "";
            String[] words = name.split("\\s+");
            if (words.length != 2) {
                continue;   // the original mixes binomial names only
            }
            all.add(new Species(family, words[0], words[1]));
            real.add(name);
            generaByFamily.computeIfAbsent(family, f -> new LinkedHashSet<>()).add(words[0]);
            allGenera.add(words[0]);
        }
        if (allGenera.size() < 2) {
            throw new InputException(where + " needs species of at least two genera (\"Genus species\" lines) to mix");
        }
        Set<String> made = new LinkedHashSet<>();
        long attempts = 0;
        long budget = 200L * n + 1000;
        while (made.size() < n && attempts++ < budget) {
            Species s = all.get(random.nextInt(all.size()));
            List<String> others = new ArrayList<>(generaByFamily.get(s.family()));
            others.remove(s.genus());
            if (others.isEmpty()) {
                // A family of one genus: the original would skip it; with short lists, any other genus instead.
                others = new ArrayList<>(allGenera);
                others.remove(s.genus());
            }
            String name = others.get(random.nextInt(others.size())) + " " + s.epithet();
            if (!real.contains(name)) {
                made.add(name);
            }
        }
        return made;
    }

    /** The original's medicine names: lower case, without "(...)", words with digits dropped, names with , or & left out. */
    private static Set<String> medicines(List<String> lines, int n, SplittableRandom random) {
        List<String> existing = new ArrayList<>();
        for (String line : lines) {
            String name = line.toLowerCase(Locale.ROOT).replaceAll("\\(.*?\\)", "");
            if (name.contains(",") || name.contains("&")) {
                continue;
            }
            List<String> words = new ArrayList<>();
            for (String w : name.split("\\s+")) {
                if (!w.isEmpty() && w.chars().noneMatch(Character::isDigit)) {
                    words.add(w);
                }
            }
            if (!words.isEmpty() && words.size() <= 3) {
                existing.add(String.join(" ", words));
            }
        }
        // Word pools per name length and position.
        Map<Integer, List<Set<String>>> pools = new LinkedHashMap<>();
        for (String name : existing) {
            String[] words = name.split(" ");
            List<Set<String>> pool = pools.computeIfAbsent(words.length, k -> {
                List<Set<String>> p = new ArrayList<>();
                for (int i = 0; i < k; i++) {
                    p.add(new LinkedHashSet<>());
                }
                return p;
            });
            for (int i = 0; i < words.length; i++) {
                pool.get(i).add(words[i]);
            }
        }
        Set<String> real = new HashSet<>(existing);
        Set<String> made = new LinkedHashSet<>();
        long attempts = 0;
        long budget = 200L * n + 1000;
        while (made.size() < n && attempts++ < budget && !existing.isEmpty()) {
            String original = existing.get(random.nextInt(existing.size()));
            List<Set<String>> pool = pools.get(original.split(" ").length);
            List<String> words = new ArrayList<>();
            for (Set<String> position : pool) {
                List<String> choices = new ArrayList<>(position);
                words.add(choices.get(random.nextInt(choices.size())));
            }
            String name = String.join(" ", words);
            if (!real.contains(name)) {
                made.add(name);
            }
        }
        return made;
    }
}
