package surestream.flink;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import org.apache.flink.metrics.Counter;
import org.apache.flink.table.annotation.ArgumentHint;
import org.apache.flink.table.annotation.ArgumentTrait;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.annotation.StateHint;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.catalog.DataTypeFactory;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ProcessTableFunction;
import org.apache.flink.table.functions.TableSemantics;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.inference.CallContext;
import org.apache.flink.table.types.inference.TypeInference;
import org.apache.flink.table.types.logical.utils.LogicalTypeChecks;
import org.apache.flink.types.Row;

/**
 * Keep-first keyed deduplication (surestream SEMANTICS section 4) as a Flink process table
 * function, because Flink SQL's ROW_NUMBER deduplication has neither the event-time window
 * restart nor the event-time state TTL.
 *
 * <p>Called from SQL with the table partitioned by the key fields and the event time as
 * {@code on_time}:
 *
 * <pre>
 * SELECT * FROM surestream_keyed_dedup(input => TABLE t PARTITION BY k,
 *     window_ms => CAST(600000 AS BIGINT), ttl_ms => CAST(3600000 AS BIGINT),
 *     on_null_key => 'error', on_time => DESCRIPTOR(rt), uid => 'dedup')
 * </pre>
 *
 * <p>Per key, the record kept last has event time t0 (state). A record is kept when the key
 * has no state, when its state has expired ({@code t0 + ttl <= W}, W the watermark before
 * the record) or when {@code ts >= t0 + window}; a kept record sets t0 and moves the key's
 * event-time timer to {@code t0 + ttl}, which clears the state (so state holds only the keys
 * seen in the last ttl of event time). The expiry is also checked per record, so the rule
 * holds whatever the order of a timer and a record at the same watermark.
 *
 * <p>Every record comes out, with a first column {@code dedup__status}: {@code keep},
 * {@code duplicate} (also counted in the metric {@code duplicates_dropped}) or
 * {@code null_key} (a key field is null and {@code on_null_key} is {@code error}); the SQL
 * around the call routes each kind. A PTF with timers cannot pass its input columns through,
 * so the output type is computed from the input table: the status, then every input column
 * but the PARTITION BY keys (which Flink puts first) and the time column (which Flink puts
 * last, as {@code rowtime}).
 */
@FunctionHint(output = @DataTypeHint("ROW<dedup__status STRING>"))
public class KeyedDedup extends ProcessTableFunction<Row> {

    public static final String STATUS = "dedup__status";

    /** Per key: the event time of the record kept last (null: no state). */
    public static class KeyState {
        public Long t0;
    }

    private transient Counter duplicates;
    private transient int[] dataColumns;
    private transient int[] keyColumns;

    @Override
    public void open(FunctionContext context) throws Exception {
        duplicates = context.getMetricGroup().counter("duplicates_dropped");
    }

    public void eval(
            Context ctx,
            @StateHint KeyState state,
            @ArgumentHint({ArgumentTrait.SET_SEMANTIC_TABLE, ArgumentTrait.REQUIRE_ON_TIME})
                    Row input,
            Long window_ms,
            Long ttl_ms,
            String on_null_key) {
        if (dataColumns == null) {
            TableSemantics semantics = ctx.tableSemanticsFor("input");
            dataColumns = dataColumns(semantics);
            keyColumns = semantics.partitionByColumns();
        }
        if (!"group".equals(on_null_key) && hasNullKey(input)) {
            emit("error".equals(on_null_key) ? "null_key" : "keep", input);
            return;
        }
        TimeContext<Long> time = ctx.timeContext(Long.class);
        long ts = time.time();
        Long wm = time.currentWatermark();
        boolean expired = state.t0 != null && wm != null && plus(state.t0, ttl_ms) <= wm;
        if (state.t0 == null || expired || ts >= plus(state.t0, window_ms)) {
            state.t0 = ts;
            time.registerOnTime("ttl", plus(ts, ttl_ms));
            emit("keep", input);
        } else {
            duplicates.inc();
            emit("duplicate", input);
        }
    }

    /** The key's TTL has passed (W >= t0 + ttl): forget it. */
    public void onTimer(OnTimerContext ctx, KeyState state) {
        ctx.clearAll();
    }

    private boolean hasNullKey(Row input) {
        for (int k : keyColumns) {
            if (input.getField(k) == null) {
                return true;
            }
        }
        return false;
    }

    private void emit(String status, Row input) {
        Row out = new Row(dataColumns.length + 1);
        out.setField(0, status);
        for (int i = 0; i < dataColumns.length; i++) {
            out.setField(i + 1, input.getField(dataColumns[i]));
        }
        collect(out);
    }

    /** t + d, saturated at Long.MAX_VALUE (d >= 0): never overflows. */
    private static long plus(long t, long d) {
        return t > Long.MAX_VALUE - d ? Long.MAX_VALUE : t + d;
    }

    /**
     * The input columns the output carries: all but the PARTITION BY keys and the time
     * column. During type inference the time column is known only by its type (a rowtime
     * attribute), at run time only by index: both are excluded.
     */
    static int[] dataColumns(TableSemantics semantics) {
        List<DataType> types = DataType.getFieldDataTypes(semantics.dataType());
        List<Integer> keep = new ArrayList<>();
        outer:
        for (int i = 0; i < types.size(); i++) {
            for (int k : semantics.partitionByColumns()) {
                if (k == i) {
                    continue outer;
                }
            }
            if (i == semantics.timeColumn()
                    || LogicalTypeChecks.isRowtimeAttribute(types.get(i).getLogicalType())) {
                continue;
            }
            keep.add(i);
        }
        return keep.stream().mapToInt(Integer::intValue).toArray();
    }

    @Override
    public TypeInference getTypeInference(DataTypeFactory typeFactory) {
        TypeInference base = super.getTypeInference(typeFactory);
        TypeInference.Builder builder = TypeInference.newBuilder()
                .stateTypeStrategies(base.getStateTypeStrategies())
                .outputTypeStrategy(KeyedDedup::outputType);
        base.getStaticArguments().ifPresent(builder::staticArguments);
        return builder.build();
    }

    private static Optional<DataType> outputType(CallContext call) {
        Optional<TableSemantics> semantics = call.getTableSemantics(0);
        if (semantics.isEmpty()) {
            return Optional.empty();
        }
        DataType input = semantics.get().dataType();
        List<String> names = DataType.getFieldNames(input);
        List<DataType> types = DataType.getFieldDataTypes(input);
        List<DataTypes.Field> fields = new ArrayList<>();
        fields.add(DataTypes.FIELD(STATUS, DataTypes.STRING()));
        for (int i : dataColumns(semantics.get())) {
            fields.add(DataTypes.FIELD(names.get(i), types.get(i)));
        }
        return Optional.of(DataTypes.ROW(fields));
    }
}
