package surestream.flink;

import java.io.IOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;

/**
 * One JSON line read by our local runner's rules ({@code connectors/parsing.py}, {@code
 * connectors/value_types.py}), parsed once (Flink's shaded Jackson, as a token stream):
 * the row of {@link JsonFormatFactory} -- the columns' values, the line, and the problem,
 * NULL for a record. The problem is the first that holds, in this order and in the words
 * of {@code sql_values} (the Kafka source's SQL): {@code not valid JSON} (the whole line must
 * be one JSON document of UTF-8 bytes: no text after it, no {@code NaN}, no number beyond
 * a double, no lone surrogate -- as orjson), {@code a record must be a JSON object, not <kind>}, then the
 * first schema column (in schema order) whose value does not fit, naming the value by its
 * JSON text on the line:
 *
 * <ul>
 *   <li>BIGINT: an integer literal within int64;
 *   <li>DOUBLE: any number ({@code -0.0} keeps its sign); an integer literal only if its
 *       float value is exact (ours: {@code float(i) == i}), beyond int64 too;
 *   <li>BOOLEAN: {@code true} / {@code false};
 *   <li>STRING: a string, an integer (its digits, as Python writes the integer) or a
 *       boolean ({@code true} / {@code false}); not a fraction or exponent (Python's float
 *       text is not Java's), nor an object or array.
 * </ul>
 *
 * <p>{@code null} or a missing field is NULL; a key given twice keeps its first value (as
 * ours); fields outside the schema are not read. A blank line (only whitespace) is no row.
 */
final class JsonRecords implements LineRows.LineParser {

    private static final long serialVersionUID = 1L;
    /** 2**53: every integer up to it has an exact double. */
    private static final long EXACT = 1L << 53;

    enum Kind {
        BIGINT("an integer", "int"),
        DOUBLE("a number", "float"),
        BOOLEAN("a boolean", "bool"),
        STRING("a string, an integer or a boolean", "string");

        final String word;
        final String specWord;

        Kind(String word, String specWord) {
            this.word = word;
            this.specWord = specWord;
        }
    }

    private final Kind[] kinds;
    private final String[] names;
    /** per column: the reason's text before the value and after it. */
    private final String[] heads;
    private final String[] tails;
    private transient JsonFactory factory;
    private transient Map<String, Integer> index;

    JsonRecords(List<String> names, List<Kind> kinds) {
        this.names = names.toArray(new String[0]);
        this.kinds = kinds.toArray(new Kind[0]);
        heads = new String[this.names.length];
        tails = new String[this.names.length];
        for (int i = 0; i < this.names.length; i++) {
            heads[i] = "field " + pythonRepr(this.names[i]) + ": the value ";
            tails[i] = " is not " + this.kinds[i].word + "; the column is "
                    + this.kinds[i].specWord + " (declared)";
        }
    }

    @Override
    public RowData parse(String line, boolean utf8) {
        if (line.isBlank() && isAsciiBlank(line)) {
            return null;
        }
        int n = names.length;
        GenericRowData row = new GenericRowData(n + 2);
        row.setField(n, StringData.fromString(line));
        String problem;
        try {
            problem = utf8 ? read(line, row) : "not valid JSON";  // (orjson reads bytes)
        } catch (IOException | NotJson e) {
            problem = "not valid JSON";
        }
        if (problem != null) {
            for (int i = 0; i < n; i++) {
                row.setField(i, null);
            }
            row.setField(n + 1, StringData.fromString(problem));
        }
        return row;
    }

    /** Only the whitespace Python's {@code bytes.strip} removes (so a line of U+2003 is read). */
    private static boolean isAsciiBlank(String line) {
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != 0x0b && c != 0x0c) {
                return false;
            }
        }
        return true;
    }

    /** Fills the row's columns; returns the problem or null. */
    private String read(String line, GenericRowData row) throws IOException {
        if (factory == null) {
            factory = new JsonFactory();
            index = new HashMap<>();
            for (int i = 0; i < names.length; i++) {
                index.put(names[i], i);
            }
        }
        boolean escapes = line.indexOf('\\') >= 0;
        try (JsonParser p = factory.createParser(line)) {
            JsonToken first = p.nextToken();
            if (first != JsonToken.START_OBJECT) {
                walk(p, escapes);
                end(p);
                return "a record must be a JSON object, not " + kindPhrase(first);
            }
            boolean[] seen = new boolean[names.length];
            String[] problems = null;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                if (escapes) {
                    checkSurrogates(name);
                }
                p.nextToken();
                Integer i = index.get(name);
                if (i == null || seen[i]) {
                    walk(p, escapes);  // (a key given twice: the first value is kept)
                    continue;
                }
                seen[i] = true;
                String problem = fit(p, i, row, line, escapes);
                if (problem != null) {
                    if (problems == null) {
                        problems = new String[names.length];
                    }
                    problems[i] = problem;
                }
            }
            end(p);
            if (problems != null) {
                for (String problem : problems) {
                    if (problem != null) {
                        return problem;
                    }
                }
            }
            return null;
        }
    }

    /** Reads the current value into column i, or says why it does not fit. */
    private String fit(JsonParser p, int i, GenericRowData row, String line, boolean escapes)
            throws IOException {
        JsonToken t = p.currentToken();
        if (t == JsonToken.VALUE_NULL) {
            return null;
        }
        switch (kinds[i]) {
            case BIGINT:
                if (t == JsonToken.VALUE_NUMBER_INT
                        && p.getNumberType() != JsonParser.NumberType.BIG_INTEGER) {
                    row.setField(i, p.getLongValue());
                    return null;
                }
                break;
            case DOUBLE:
                if (t == JsonToken.VALUE_NUMBER_FLOAT) {
                    row.setField(i, finite(p.getDoubleValue()));
                    return null;
                }
                if (t == JsonToken.VALUE_NUMBER_INT) {
                    Double exact = exactDouble(p);
                    if (exact != null) {
                        row.setField(i, exact);
                        return null;
                    }
                }
                break;
            case BOOLEAN:
                if (t == JsonToken.VALUE_TRUE || t == JsonToken.VALUE_FALSE) {
                    row.setField(i, t == JsonToken.VALUE_TRUE);
                    return null;
                }
                break;
            case STRING:
                if (t == JsonToken.VALUE_STRING) {
                    String text = p.getText();
                    if (escapes) {
                        checkSurrogates(text);
                    }
                    row.setField(i, StringData.fromString(text));
                    return null;
                }
                if (t == JsonToken.VALUE_NUMBER_INT) {
                    finiteInteger(p);
                    row.setField(i, StringData.fromString(p.getBigIntegerValue().toString()));
                    return null;
                }
                if (t == JsonToken.VALUE_TRUE || t == JsonToken.VALUE_FALSE) {
                    row.setField(i, StringData.fromString(t == JsonToken.VALUE_TRUE
                            ? "true" : "false"));
                    return null;
                }
                break;
            default:
                break;
        }
        int start = (int) p.currentTokenLocation().getCharOffset();
        walk(p, escapes);
        p.finishToken();
        int stop = (int) p.currentLocation().getCharOffset();
        return heads[i] + line.substring(start, Math.min(stop, line.length())) + tails[i];
    }

    /** The double of an integer literal if it is exact (ours: {@code float(i) == i}). */
    private static Double exactDouble(JsonParser p) throws IOException {
        JsonParser.NumberType type = p.getNumberType();
        if (type != JsonParser.NumberType.BIG_INTEGER) {
            long v = p.getLongValue();
            if (-EXACT <= v && v <= EXACT) {
                return (double) v;
            }
        }
        BigInteger v = finiteInteger(p);
        double d = v.doubleValue();
        return new BigDecimal(d).toBigIntegerExact().equals(v) ? d : null;
    }

    /** Skips the current value (an object or array whole), checking it as orjson would. */
    private static void walk(JsonParser p, boolean escapes) throws IOException {
        int depth = 0;
        JsonToken t = p.currentToken();
        while (true) {
            if (t == null) {
                throw new NotJson();
            }
            switch (t) {
                case START_OBJECT, START_ARRAY -> depth++;
                case END_OBJECT, END_ARRAY -> depth--;
                case VALUE_NUMBER_FLOAT -> finite(p.getDoubleValue());
                case VALUE_NUMBER_INT -> {
                    if (p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
                        finiteInteger(p);
                    }
                }
                case VALUE_STRING, FIELD_NAME -> {
                    if (escapes) {
                        checkSurrogates(p.getText());
                    }
                }
                default -> { }
            }
            if (depth == 0) {
                return;
            }
            t = p.nextToken();
        }
    }

    /** The document ends here: nothing but whitespace after it. */
    private static void end(JsonParser p) throws IOException {
        if (p.nextToken() != null) {
            throw new NotJson();
        }
    }

    /** orjson refuses a number beyond a double's range ("number is infinity"). */
    private static double finite(double d) {
        if (Double.isInfinite(d)) {
            throw new NotJson();
        }
        return d;
    }

    private static BigInteger finiteInteger(JsonParser p) throws IOException {
        BigInteger v = p.getBigIntegerValue();
        if (p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
            finite(v.doubleValue());
        }
        return v;
    }

    /** orjson refuses a lone surrogate (an escape {@code \ud800} without its pair). */
    private static void checkSurrogates(String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c)) {
                if (i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                    i++;
                    continue;
                }
                throw new NotJson();
            }
            if (Character.isLowSurrogate(c)) {
                throw new NotJson();
            }
        }
    }

    private static String kindPhrase(JsonToken t) {
        return switch (t) {
            case START_ARRAY -> "an array";
            case VALUE_STRING -> "a string";
            case VALUE_TRUE, VALUE_FALSE -> "a boolean";
            case VALUE_NULL -> "null";
            default -> "a number";
        };
    }

    /** A column name as Python's {@code repr} writes it (the local runner's reasons). */
    static String pythonRepr(String s) {
        char quote = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
        StringBuilder b = new StringBuilder().append(quote);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == quote || c == '\\') {
                b.append('\\').append(c);
            } else if (c == '\n') {
                b.append("\\n");
            } else if (c == '\r') {
                b.append("\\r");
            } else if (c == '\t') {
                b.append("\\t");
            } else if (c < 0x20 || (c >= 0x7f && c <= 0xa0)) {
                b.append(String.format("\\x%02x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append(quote).toString();
    }

    /** The line is not one JSON document as orjson reads it. */
    private static final class NotJson extends RuntimeException {
        private static final long serialVersionUID = 1L;

        NotJson() {
            super(null, null, false, false);
        }
    }
}
