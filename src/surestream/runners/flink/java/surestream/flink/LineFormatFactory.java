package surestream.flink;

import java.io.IOException;
import java.util.Collections;
import java.util.Set;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.connector.file.src.FileSourceSplit;
import org.apache.flink.connector.file.src.impl.StreamFormatAdapter;
import org.apache.flink.connector.file.src.reader.BulkFormat;
import org.apache.flink.connector.file.table.factories.BulkReaderFormatFactory;
import org.apache.flink.connector.file.table.format.BulkDecodingFormat;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.types.DataType;

/**
 * A filesystem format that reads a file's lines, each made a row by a {@link
 * LineRows.LineParser} ({@link JsonFormatFactory}); no options.
 *
 * <p>Why not on Flink's {@code raw} (or {@code json}) format: every format built on a
 * {@code DeserializationSchema} reads files through {@code DeserializationSchemaAdapter},
 * whose restored reader skips the checkpointed number of records but then counts its
 * position from zero again (Flink 2.3.0: {@code seek} does not add the skipped records to
 * {@code numRead}). A job restored once is right; a checkpoint or savepoint it takes holds a
 * read position short by everything read before the restore, so a second restore reads
 * those records again, and the exactly-once sink writes them twice (measured: a second
 * crash and resume wrote 1,218 records twice). Lines are read here through Flink's {@link
 * StreamFormatAdapter}, whose restored reader carries the skipped count forward.
 *
 * <p>A file is one split (not splittable: the order of a file's lines is the order of its
 * partition). An empty file is read as no rows.
 */
public abstract class LineFormatFactory implements BulkReaderFormatFactory {

    /** The parser of the table's physical row; refuses a table it cannot fill. */
    abstract LineRows.LineParser parserOf(DataType physicalDataType);

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Collections.emptySet();
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Collections.emptySet();
    }

    @Override
    public BulkDecodingFormat<RowData> createDecodingFormat(
            DynamicTableFactory.Context context, ReadableConfig formatOptions) {
        return new BulkDecodingFormat<RowData>() {
            @Override
            public BulkFormat<RowData, FileSourceSplit> createRuntimeDecoder(
                    DynamicTableSource.Context sourceContext, DataType physicalDataType) {
                LineRows.LineParser parser = parserOf(physicalDataType);
                TypeInformation<RowData> type =
                        sourceContext.<RowData>createTypeInformation(physicalDataType);
                return new EmptyFileAware(
                        new StreamFormatAdapter<>(new LineRows(type, parser)));
            }

            @Override
            public ChangelogMode getChangelogMode() {
                return ChangelogMode.insertOnly();
            }
        };
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
