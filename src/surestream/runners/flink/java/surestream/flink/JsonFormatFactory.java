package surestream.flink;

import java.util.ArrayList;
import java.util.List;

import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.LogicalTypeRoot;

/**
 * The {@code surestream-json} format of the filesystem connector: each line of a JSON-lines
 * file parsed once, here, by our local runner's typing rules ({@link JsonRecords}), instead
 * of by several JSON functions per column in SQL.
 *
 * <p>The table's physical columns: the declared schema's columns ({@code BIGINT}, {@code
 * DOUBLE}, {@code BOOLEAN}, {@code STRING}), then {@code line__} (the line) and {@code
 * problem__} (NULL when the line is a record; else why not, the error's reason). A blank
 * line is no row (our runner skips it). Lines are read as {@link LineFormatFactory} reads
 * them -- through {@code StreamFormatAdapter}, whose restored reader keeps the read position
 * right across a second restore (see there) -- and a file is one split.
 */
public final class JsonFormatFactory extends LineFormatFactory {

    public static final String IDENTIFIER = "surestream-json";
    static final String LINE = "line__";
    static final String PROBLEM = "problem__";

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    /** The parser of the table's columns; refuses a table not laid out as documented. */
    @Override
    JsonRecords parserOf(DataType physicalDataType) {
        List<String> names = DataType.getFieldNames(physicalDataType);
        List<DataType> types = physicalDataType.getChildren();
        int n = names.size() - 2;
        if (n < 0 || !names.get(n).equals(LINE) || !names.get(n + 1).equals(PROBLEM)
                || !isString(types.get(n)) || !isString(types.get(n + 1))) {
            throw refusal(physicalDataType);
        }
        List<JsonRecords.Kind> kinds = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            LogicalTypeRoot root = types.get(i).getLogicalType().getTypeRoot();
            switch (root) {
                case BIGINT -> kinds.add(JsonRecords.Kind.BIGINT);
                case DOUBLE -> kinds.add(JsonRecords.Kind.DOUBLE);
                case BOOLEAN -> kinds.add(JsonRecords.Kind.BOOLEAN);
                case VARCHAR -> kinds.add(JsonRecords.Kind.STRING);
                default -> throw refusal(physicalDataType);
            }
        }
        return new JsonRecords(names.subList(0, n), kinds);
    }

    private static boolean isString(DataType type) {
        return type.getLogicalType().getTypeRoot() == LogicalTypeRoot.VARCHAR;
    }

    private static ValidationException refusal(DataType physicalDataType) {
        return new ValidationException("format '" + IDENTIFIER + "' reads the schema's "
                + "columns (BIGINT, DOUBLE, BOOLEAN, STRING), then " + LINE + " STRING and "
                + PROBLEM + " STRING; the table has " + physicalDataType);
    }
}
