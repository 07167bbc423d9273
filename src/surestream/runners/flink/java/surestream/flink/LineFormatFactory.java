package surestream.flink;

import java.util.Collections;
import java.util.Set;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.ConfigOption;
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
 * LineRows.LineParser} ({@link LinesFormatFactory}, {@link JsonFormatFactory}): always
 * through Flink's {@link StreamFormatAdapter} (the read position right across a second
 * restore: see {@link LinesFormatFactory}), a file being one split; no options.
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
                return new LinesFormatFactory.EmptyFileAware(
                        new StreamFormatAdapter<>(new LineRows(type, parser)));
            }

            @Override
            public ChangelogMode getChangelogMode() {
                return ChangelogMode.insertOnly();
            }
        };
    }
}
