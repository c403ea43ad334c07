package dev.tether.server;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ContainerNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tether.proc.ProcessIdentity;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Reads what it can from a damaged lease file (truncated by a full disk or a crash of the writer, or
 * overwritten with garbage): the JSON is parsed token by token up to the first error, and the fields
 * found before it are kept. An identity is kept only when all its fields (pid, start time, boot id, uid) were read, so a
 * salvaged identity names one process exactly — or none, and is then never signalled.
 * A number that runs up to the end of the file is dropped too (it may have been cut short: 80 of 8080).
 */
final class LeaseSalvage {
    private static final JsonFactory FACTORY = new JsonFactory();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private LeaseSalvage() {}

    /** A lease with the fields that could be recovered; {@code id} (the file name) is always there. */
    static Lease salvage(String id, byte[] bytes) {
        JsonNode root = partialTree(bytes);
        JsonNode r = root instanceof ObjectNode ? root : NODES.objectNode();
        Set<ProcessIdentity> members = new HashSet<>();
        JsonNode list = r.get("members");
        if (list instanceof ArrayNode array) {
            for (JsonNode m : array) {
                ProcessIdentity identity = identity(m);
                if (identity != null) {
                    members.add(identity);
                }
            }
        }
        List<String> argv = new ArrayList<>();
        if (r.get("argv") instanceof ArrayNode words) {
            words.forEach(w -> argv.add(w.asText()));
        }
        return new Lease(id, text(r, "model"), text(r, "profile"), argv, text(r, "host"), (int) number(r, "port"),
                text(r, "healthPath"), identity(r.get("server")), (int) number(r, "pgid"), identity(r.get("owner")),
                identity(r.get("shim")), members, text(r, "logPath"), instant(r.get("startedAt")),
                number(r, "graceMillis"), state(r.get("state")));
    }

    /** The JSON tree of the longest prefix that parses; containers left open are kept with what they hold. */
    static JsonNode partialTree(byte[] bytes) {
        Deque<Frame> stack = new ArrayDeque<>();
        JsonNode root = null;
        ContainerNode<?> lastParent = null;
        String lastField = null;
        boolean lastRanToEnd = false;
        try (JsonParser p = FACTORY.createParser(bytes)) {
            JsonToken t;
            while ((t = p.nextToken()) != null) {
                Frame top = stack.peek();
                switch (t) {
                    case FIELD_NAME -> top.field()[0] = p.currentName();
                    case END_OBJECT, END_ARRAY -> {
                        stack.pop();
                        lastParent = null;
                    }
                    case START_OBJECT, START_ARRAY -> {
                        ContainerNode<?> node = t == JsonToken.START_OBJECT ? NODES.objectNode() : NODES.arrayNode();
                        if (top == null) {
                            if (root != null) {
                                return root;   // a second document: not a lease's
                            }
                            root = node;
                        } else {
                            attach(top, node);
                        }
                        stack.push(new Frame(node, new String[1]));
                        lastParent = null;
                    }
                    default -> {
                        if (top == null) {
                            return root;   // a bare value: nothing of a lease
                        }
                        JsonNode value = switch (t) {
                            case VALUE_STRING -> NODES.textNode(p.getText());
                            case VALUE_NUMBER_INT -> NODES.numberNode(p.getLongValue());
                            case VALUE_NUMBER_FLOAT -> NODES.numberNode(p.getDoubleValue());
                            case VALUE_TRUE -> NODES.booleanNode(true);
                            case VALUE_FALSE -> NODES.booleanNode(false);
                            default -> NODES.nullNode();
                        };
                        attach(top, value);
                        lastParent = top.node();
                        lastField = top.field()[0];
                        // A number that runs to the very end of the input may have been cut short.
                        lastRanToEnd = value.isNumber() && p.currentLocation().getByteOffset() >= bytes.length;
                    }
                }
            }
        } catch (Exception e) {
            // The value just read may have been cut short by the end of the file (a number): drop it.
            if (!lastRanToEnd) {
                return root;
            }
            if (lastParent instanceof ObjectNode o && lastField != null) {
                o.remove(lastField);
            } else if (lastParent instanceof ArrayNode a && !a.isEmpty()) {
                a.remove(a.size() - 1);
            }
        }
        return root;
    }

    /** An open container and the field name read last in it (objects only). */
    private record Frame(ContainerNode<?> node, String[] field) {}

    private static void attach(Frame frame, JsonNode node) {
        if (frame.node() instanceof ObjectNode o) {
            if (frame.field()[0] != null) {
                o.set(frame.field()[0], node);
            }
        } else if (frame.node() instanceof ArrayNode a) {
            a.add(node);
        }
    }

    private static ProcessIdentity identity(JsonNode n) {
        if (n == null || !n.isObject() || !n.path("pid").isIntegralNumber() || !n.path("startTicks").isIntegralNumber()
                || !n.path("bootId").isTextual() || !n.path("uid").isIntegralNumber()) {
            return null;
        }
        return new ProcessIdentity(n.get("pid").intValue(), n.get("startTicks").longValue(), n.get("bootId").asText(),
                n.get("uid").intValue());
    }

    private static String text(JsonNode r, String field) {
        JsonNode n = r.get(field);
        return n != null && n.isTextual() ? n.asText() : null;
    }

    private static long number(JsonNode r, String field) {
        JsonNode n = r.get(field);
        return n != null && n.isIntegralNumber() ? n.longValue() : 0;
    }

    private static Instant instant(JsonNode n) {
        try {
            return n != null && n.isTextual() ? Instant.parse(n.asText()) : null;
        } catch (RuntimeException e) {
            return null;
        }
    }

    private static Lease.State state(JsonNode n) {
        try {
            return n != null && n.isTextual() ? Lease.State.valueOf(n.asText()) : null;
        } catch (RuntimeException e) {
            return null;
        }
    }
}
