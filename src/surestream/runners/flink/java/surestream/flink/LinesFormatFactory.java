package surestream.flink;

import java.io.IOException;
import java.util.List;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.file.src.FileSourceSplit;
import org.apache.flink.connector.file.src.impl.StreamFormatAdapter;
import org.apache.flink.connector.file.src.reader.BulkFormat;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeRoot;

/**
 * The {@code surestream-lines} format of the filesystem connector: each line of a file as
 * one row of a single {@code STRING} column, which the generated SQL parses (so that a bad
 * value costs its record, not the job).
 *
 * <p>Why not Flink's {@code raw} (or {@code json}) format: every format built on a
 * {@code DeserializationSchema} reads files through {@code DeserializationSchemaAdapter},
 * whose restored reader skips the checkpointed number of records but then counts its
 * position from zero again (Flink 2.3.0: {@code seek} does not add the skipped records to
 * {@code numRead}). A job restored once is right; a checkpoint or savepoint it takes holds a
 * read position short by everything read before the restore, so a second restore reads
 * those records again, and the exactly-once sink writes them twice (measured: a second
 * crash and resume wrote 1,218 records twice). This format reads through Flink's
 * {@link StreamFormatAdapter}, whose restored reader carries the skipped count forward.
 *
 * <p>Lines end at {@code \n}; a {@code \r} before it is dropped, as the {@code raw} format
 * and our local runner do. A file is one split (not splittable: the order of a file's lines
 * is the order of its partition). An empty file is read as no rows.
 */
public final class LinesFormatFactory extends LineFormatFactory {

    public static final String IDENTIFIER = "surestream-lines";

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    LineRows.LineParser parserOf(DataType physicalDataType) {
        List<DataType> fields = physicalDataType.getChildren();
        LogicalType only = fields.size() == 1 ? fields.get(0).getLogicalType() : null;
        if (only == null
                || (only.getTypeRoot() != LogicalTypeRoot.VARCHAR
                        && only.getTypeRoot() != LogicalTypeRoot.CHAR)) {
            throw new ValidationException(
                    "format '" + IDENTIFIER + "' reads one STRING column (the line); "
                            + "the table has " + physicalDataType);
        }
        return (line, utf8) -> GenericRowData.of(StringData.fromString(line));
    }

    /**
     * {@link StreamFormatAdapter} refuses a file of length 0 (its stream checks {@code
     * fileLength > 0}); an empty input file is a partition without records, not an error.
     */
    static final class EmptyFileAware implements BulkFormat<RowData, FileSourceSplit> {

        private static final long serialVersionUID = 1L;
        private final BulkFormat<RowData, FileSourceSplit> lines;

        EmptyFileAware(BulkFormat<RowData, FileSourceSplit> lines) {
            this.lines = lines;
        }

        @Override
        public Reader<RowData> createReader(Configuration config, FileSourceSplit split)
                throws IOException {
            return split.fileSize() == 0 ? new NoRows() : lines.createReader(config, split);
        }

        @Override
        public Reader<RowData> restoreReader(Configuration config, FileSourceSplit split)
                throws IOException {
            return split.fileSize() == 0 ? new NoRows() : lines.restoreReader(config, split);
        }

        @Override
        public boolean isSplittable() {
            return false;
        }

        @Override
        public TypeInformation<RowData> getProducedType() {
            return lines.getProducedType();
        }
    }

    /** The reader of an empty file. */
    static final class NoRows implements BulkFormat.Reader<RowData> {
        @Override
        public BulkFormat.RecordIterator<RowData> readBatch() {
            return null;
        }

        @Override
        public void close() {}
    }
}
